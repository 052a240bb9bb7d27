/**
 * dispatchd as users run it: the .deb installed under a throw-away systemd (test/helpers:
 * Sandbox, ensureDeb, installDeb), started by the package as `apt-get install` leaves it.
 * The load generator (build/bench/*.js) is copied next to the installed program,
 * /usr/lib/dispatchd/build/bench/, so that inside the sandbox it uses the installed client
 * library and Node modules, and reaches /run/dispatchd/*.sock.
 */
import path from 'node:path';
import { cannotBootReason, cannotBuildDebReason, describe, installDeb, ROOT, Sandbox } from '../test/helpers/index.js';

const INSIDE_BENCH = '/usr/lib/dispatchd/build/bench';

/** Why the systemd measurements cannot run here (`deb`: a .deb was given, none is built), or undefined when they can. */
export function cannotBoot(deb?: string): string | undefined {
  return cannotBootReason() ?? (deb ? undefined : cannotBuildDebReason());
}

export class SystemdSuite {
  private constructor(private readonly sb: Sandbox) {}

  /** Boots a sandbox, installs the .deb and the load generator (build/bench, and build/test/helpers/until.js it imports). @throws Error with the failing step. */
  static async boot(deb: string): Promise<SystemdSuite> {
    const sb = await Sandbox.boot('bench');
    try {
      await installDeb(sb, deb);
      await sb.copyIn(path.dirname(INSIDE_BENCH), path.join(ROOT, 'build/bench'));
      // The worker's one import from the test helpers (until), where `../test/helpers/` resolves.
      await sb.copyIn(`${path.dirname(INSIDE_BENCH)}/test/helpers`, path.join(ROOT, 'build/test/helpers/until.js'));
    } catch (err) {
      sb.stopSync();
      throw err;
    }
    return new SystemdSuite(sb);
  }

  /** Runs build/bench/worker.js inside; resolves with its JSON (its last line). @throws Error when it fails. */
  async worker(args: string[], timeoutMs = 600_000): Promise<unknown> {
    const r = await this.sb.exec(['node', `${INSIDE_BENCH}/worker.js`, ...args], { timeoutMs });
    if (r.code !== 0) throw new Error(describe(`bench worker ${args[0] ?? ''} in sandbox '${this.sb.name}'`, r));
    return JSON.parse(r.stdout.toString().trim().split('\n').pop()!);
  }

  /** A line on the installed versions (dispatchd, systemd). */
  async versions(): Promise<string> {
    return (await this.sb.out("echo \"dispatchd $(dpkg-query -W -f '${Version}' dispatchd), $(systemctl --version | head -n 1)\"")).trim();
  }

  stop(): Promise<void> {
    return this.sb.shutdown();
  }

  /** For exit paths: stops synchronously. */
  stopSync(): void {
    this.sb.stopSync();
  }
}
