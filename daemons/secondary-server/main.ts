#!/usr/bin/node
/**
 * dispatchd-secondary: entry point of secondary server N (dispatchd-secondary@N.service).
 * Needs the fds of dispatchd-secondary@N.socket (name "client") and
 * dispatchd-secondary-mailbox@N.socket (name "mailbox"). Exit codes: README "Exit codes".
 */
import { runDaemon } from '../common/daemon.js';
import { newGeneration } from '../common/generation.js';
import { requireFd } from '../common/listen-fds.js';
import { MAX_SECONDARIES } from '../common/scoreboard.js';
import { SecondaryServer } from './secondary-server.js';

await runDaemon<{ config: string; instance: number }>({
  identifier: 'dispatchd-secondary',
  unit: (a: { instance: number }) => `dispatchd-secondary@${a.instance}.service`,
  options: {
    instance: {
      type: 'number',
      required: true,
      describe: `secondary number N (1..${MAX_SECONDARIES}), the unit's %i`,
      check: (n) => (Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_SECONDARIES ? undefined : `--instance must be a whole number 1..${MAX_SECONDARIES}`),
    },
  },
  start: async ({ args, config, logger, notifier, listenFds }) =>
    SecondaryServer.start({
      config,
      logger,
      notifier,
      instance: args.instance,
      listen: { fd: requireFd(listenFds, 'client', `dispatchd-secondary@${args.instance}.socket`) },
      mailboxFd: requireFd(listenFds, 'mailbox', `dispatchd-secondary-mailbox@${args.instance}.socket`),
      generation: newGeneration(),
      pid: process.pid,
    }),
});
