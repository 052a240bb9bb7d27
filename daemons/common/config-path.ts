/**
 * Where the configuration file is installed, in a module of its own so that dispatchctl's
 * help and usage errors can name it without loading the configuration's parser and schema
 * (config.ts re-exports it).
 */
export const DEFAULT_CONFIG_PATH = '/etc/dispatchd/dispatchd.conf';
