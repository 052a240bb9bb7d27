#!/usr/bin/node
/**
 * dispatchd-main: entry point of the main server (dispatchd-main.service).
 * Needs the fds of dispatchd-main.socket (name "client") and dispatchd-main-mailbox.socket
 * (name "mailbox"). Exit codes: README "Exit codes".
 */
import { runDaemon } from '../common/daemon.js';
import { newGeneration } from '../common/generation.js';
import { requireFd } from '../common/listen-fds.js';
import { MainServer } from './main-server.js';

await runDaemon({
  identifier: 'dispatchd-main',
  unit: () => 'dispatchd-main.service',
  start: async ({ config, logger, notifier, listenFds }) =>
    MainServer.start({
      config,
      logger,
      notifier,
      listen: { fd: requireFd(listenFds, 'client', 'dispatchd-main.socket') },
      mailboxFd: requireFd(listenFds, 'mailbox', 'dispatchd-main-mailbox.socket'),
      generation: newGeneration(),
      pid: process.pid,
    }),
});
