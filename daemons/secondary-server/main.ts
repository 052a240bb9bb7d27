#!/usr/bin/node
/**
 * dispatchd-secondary: entry point of secondary server N (dispatchd-secondary@N.service).
 * Needs the fds of dispatchd-secondary@N.socket (name "client") and
 * dispatchd-secondary-mailbox@N.socket (name "mailbox"). Exit codes: README "Exit codes".
 */
import { runDaemon } from '../common/daemon.js';
import { newGeneration } from '../common/generation.js';
import { requireFd } from '../common/listen-fds.js';
import { clientSocketUnit, FD_NAMES, isSecondaryInstance, mailboxSocketUnit, MAX_SECONDARIES, secondary, serviceUnit } from '../common/topology.js';
import { SecondaryServer } from './secondary-server.js';

await runDaemon<{ config: string; instance: number }>({
  identifier: 'dispatchd-secondary',
  // --instance is checked (below) before the unit is asked for.
  unit: (a: { instance: number }) => serviceUnit(secondary(a.instance)),
  options: {
    instance: {
      type: 'number',
      required: true,
      describe: `secondary number N (1..${MAX_SECONDARIES}), the unit's %i`,
      check: (n) => (isSecondaryInstance(n) ? undefined : `--instance must be a whole number 1..${MAX_SECONDARIES}`),
    },
  },
  start: async ({ args, config, logger, notifier, listenFds, marking }) =>
    SecondaryServer.start({
      config,
      logger,
      notifier,
      instance: args.instance,
      listen: { fd: requireFd(listenFds, FD_NAMES.client, clientSocketUnit(secondary(args.instance))) },
      mailboxFd: requireFd(listenFds, FD_NAMES.mailbox, mailboxSocketUnit(secondary(args.instance))),
      generation: newGeneration(),
      pid: process.pid,
      marking,
    }),
});
