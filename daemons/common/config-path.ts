/**
 * Where the configuration file is installed, in a module of its own so that dispatchctl's
 * help and usage errors can name it without loading the configuration's parser and schema
 * (config.ts re-exports it).
 */
export const DEFAULT_CONFIG_PATH = '/etc/dispatchd/dispatchd.conf';

/**
 * Whether a missing configuration `file` is an error: only for a file other than the
 * installed path. A missing {@link DEFAULT_CONFIG_PATH} means the defaults, whether a
 * command names it or not, so that the units (which pass it with `--config` and to
 * `check-config` on reload) and a command run without one agree (README "Configuration").
 */
export function missingConfigIsError(file: string | undefined): boolean {
  return file !== undefined && file !== DEFAULT_CONFIG_PATH;
}
