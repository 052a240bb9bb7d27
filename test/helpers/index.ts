/**
 * The test helper library: the one harness of the component, system, chaos, fuzz and bench
 * code. Import from here (`../helpers/index.js`).
 *
 * Processes (systemd imitated, no root needed):
 *   const suite = new ProcessSuite({ config: '[main]\nlease_ttl_ms = 300\n', secondaries: 2, restart: true });
 *   closeAfter(t, suite);              // at the end: dump logs and slots if `t` failed, then kill all
 *   await suite.startAll();            // secondaries, main (each awaited at READY=1), the watchdog
 *   await suite.start('secondary-1');  // or one at a time; suite.stop(name), suite.signal(name, 'SIGSTOP')
 *   suite.slot(name), suite.output(name), suite.pid(name), suite.healthy(), suite.dispatchctl([...])
 *   The suite is also the watchdog's UnitManager: suite.startWatchdog({ binding, logStream }),
 *   suite.restartLog lists the units it restarted.
 *
 * A throw-away systemd (root, systemd-nspawn):
 *   const why = cannotBootReason();    // skip with this reason when set
 *   const sb = await Sandbox.boot(import.meta.url);  // or Sandbox.attach('dispatchd')
 *   closeAfter(t, sb);                 // dump units and journal if `t` failed, then stop it
 *   await installDeb(sb, await ensureDeb());          // the one .deb build: locked, by input digest
 *   await sb.out('systemctl is-active dispatchd.target'); sb.exec(argv), sb.show(unit, 'MainPID')
 *   const load = await sb.startLoad({ clients: 4, readyAfter: 20 }); load.stop(); await load.done;
 *   (test/system/lib/suite.ts: installedSuite(t, import.meta.url) does boot + install for a file.)
 *
 * Waiting: `await until('what is awaited', timeoutMs, () => value | undefined)`, the one
 * wait-for-a-condition (polls every 20 ms, or as slowly as the check is slow); prefer awaiting
 * an event (READY=1, a promise) where there is one.
 *
 * Failure dumps: closeAfter / dumpIfFailed (tests), reportFailure (runners) print a harness's
 * diagnostics() one way.
 *
 * Moving a test written against the old harnesses:
 *   new Suite(config) (test/component/lib/suite.ts)  -> new ProcessSuite({ config, restart: false })
 *   suite.daemons.get(n)!.child.pid / .kill(sig)      -> suite.pid(n) / suite.signal(n, sig); exited: !suite.isRunning(n)
 *   suite.daemons.get(n)!.output()                    -> suite.output(n) (lines)
 *   suite.waitFor(cond, ms, what)                     -> until(what, ms, cond)
 *   suite.close() / t.teardown(() => suite.shutdown()) -> closeAfter(t, suite)
 *   sleep(IN_FLIGHT_MS) after sending a request       -> await suite.untilRunning(secondaryName)
 *   test/chaos/lib/{process-suite,harness,paths}.ts   -> here (harness's until(cond, ms, every) -> until(what, ms, cond, { everyMs }))
 *   new SandboxTarget(name) (test/chaos/lib)          -> Sandbox.attach(name); target.sh(script) -> sb.out(script)
 *   test/system/lib/{sandbox,deb,repo,cleanup}.ts     -> here (REPO -> ROOT; sb.stop() -> sb.shutdown())
 *   until(what, ms, check, intervalMs) (system lib)   -> until(what, ms, check, { everyMs })
 *   bench PlainSuite.start(n, nodeArgs)               -> new ProcessSuite({ secondaries: n, nodeArgs, restart: false }).startAll({ watchdog: false })
 */
export { onCleanup } from './cleanup.js';
export { describe, runCommand, type ExecOptions, type ExecResult } from './command.js';
export { cannotBuildDebReason, DEB_DIR, ensureDeb, install, installDeb } from './deb.js';
export { closeAfter, dumpIfFailed, reportFailure, type Harness, type TestLike } from './failure.js';
export { NotifySocket } from './notify-socket.js';
export { BUILD_DAEMONS, BUILD_TEST, BUILTIN_TYPES_DIR, DISPATCHCTL, ROOT } from './paths.js';
export { isUp, ProcessSuite, STALE_HEARTBEAT_MS, type ProcessSuiteOptions, type WatchdogOptions } from './process-suite.js';
export { cannotBootReason, Sandbox, SANDBOX_DAEMONS, TOOLS_INSIDE, type RunningLoad, type RunningTool } from './sandbox.js';
export { until, type UntilOptions } from './until.js';
