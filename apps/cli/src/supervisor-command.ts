import { ConfigError } from '../../supervisor/src/config.js';
import { startSupervisor } from '../../supervisor/src/bootstrap.js';

/** `autopack supervisor`: runs until SIGINT/SIGTERM. */
export async function runSupervisorCommand(flags: { port?: number; host?: string }): Promise<number | undefined> {
  try {
    const sup = await startSupervisor(process.env, {
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(flags.host !== undefined ? { host: flags.host } : {}),
    });
    process.stdout.write(`autopack supervisor listening on ${sup.url}\n`);
    let closing = false;
    const stop = async () => {
      if (closing) process.exit(130);
      closing = true;
      await sup.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`autopack supervisor: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      process.stderr.write(`autopack supervisor: the address is already in use (set PORT or --port)\n`);
      return 1;
    }
    process.stderr.write(`autopack supervisor: could not start: ${e.message}\n`);
    return 1;
  }
}
