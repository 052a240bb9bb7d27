#!/usr/bin/node
/**
 * dispatchd-main: entry point of the main server (dispatchd-main.service).
 * Needs the fds of dispatchd-main.socket (name "client") and dispatchd-main-mailbox.socket
 * (name "mailbox"). Exit codes: README "Exit codes".
 */
import { runDaemon } from '../common/daemon.js';
import { newGeneration } from '../common/generation.js';
import { requireFd } from '../common/listen-fds.js';
import { clientSocketUnit, FD_NAMES, MAIN, mailboxSocketUnit, serviceUnit } from '../common/topology.js';
import { MainServer } from './main-server.js';

await runDaemon({
  identifier: 'dispatchd-main',
  unit: () => serviceUnit(MAIN),
  start: async ({ config, logger, notifier, listenFds, marking }) =>
    MainServer.start({
      config,
      logger,
      notifier,
      listen: { fd: requireFd(listenFds, FD_NAMES.client, clientSocketUnit(MAIN)) },
      mailboxFd: requireFd(listenFds, FD_NAMES.mailbox, mailboxSocketUnit(MAIN)),
      generation: newGeneration(),
      pid: process.pid,
      marking,
    }),
});
