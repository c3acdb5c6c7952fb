import { serveScriptFromFile } from '@app/testing';

/** `autopack llm-server`: serves a script until SIGINT/SIGTERM. */
export async function runLlmServerCommand(opts: { script: string; port: number; host: string; record?: string }): Promise<number | undefined> {
  try {
    const server = await serveScriptFromFile({ scriptPath: opts.script, port: opts.port, host: opts.host, recordFile: opts.record, log: (m: string) => process.stderr.write(`${m}\n`) });
    process.stdout.write(`scripted LLM server on ${server.url}\n  OPENAI_BASE_URL=${server.openaiBaseUrl}\n  ANTHROPIC_BASE_URL=${server.anthropicBaseUrl}\n`);
    const stop = async () => {
      await server.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    return undefined;
  } catch (err) {
    process.stderr.write(`autopack llm-server: ${(err as Error).message}\n`);
    return 1;
  }
}
