#!/usr/bin/node
/**
 * dispatchd-watchdog: entry point of the watchdog (dispatchd-watchdog.service).
 * Needs the fd of dispatchd-watchdog.socket (name "mailbox") and the system D-Bus.
 * Exit codes: README "Exit codes".
 */
import { runDaemon } from '../common/daemon.js';
import { newGeneration } from '../common/generation.js';
import { requireFd } from '../common/listen-fds.js';
import { FD_NAMES, mailboxSocketUnit, serviceUnit, WATCHDOG } from '../common/topology.js';
import { DbusUnitManager } from './unit-manager.js';
import { checkProbeInterval } from './probe-interval.js';
import { Watchdog } from './watchdog.js';

await runDaemon({
  identifier: 'dispatchd-watchdog',
  unit: () => serviceUnit(WATCHDOG),
  start: async ({ config, logger, notifier, listenFds, marking }) => {
    checkProbeInterval(config, notifier.watchdogMs); // before claiming the slot
    const mailboxFd = requireFd(listenFds, FD_NAMES.mailbox, mailboxSocketUnit(WATCHDOG));
    return Watchdog.start({ config, logger, notifier, units: new DbusUnitManager(), mailboxFd, generation: newGeneration(), pid: process.pid, marking });
  },
});
