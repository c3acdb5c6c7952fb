import 'reflect-metadata';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { type SupervisorConfig, loadSupervisorConfig } from './config.js';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from './database/embedded-postgres.js';
import { apiKeyMiddleware, jsonBodyMiddleware, requestLogMiddleware } from './http/edge-middleware.js';
import { AppLogger, createRootLogger } from './http/logger.js';

/** Builds the Nest application (middleware, filter, module) without listening; reused by e2e tests. */
export async function createSupervisorApp(config: SupervisorConfig, databaseUrl: string, logger?: AppLogger): Promise<INestApplication> {
  const log = logger ?? new AppLogger(createRootLogger(config.logLevel));
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, databaseUrl, log), {
    bodyParser: false,
    logger: log,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestLogMiddleware(log.pino));
  app.use(apiKeyMiddleware(config.apiKey));
  app.use(jsonBodyMiddleware(config.maxBodyBytes));
  app.enableShutdownHooks();
  await app.init();
  return app;
}

/** A running supervisor. */
export interface RunningSupervisor {
  app: INestApplication;
  url: string;
  databaseUrl: string;
  embedded: EmbeddedPostgresHandle | undefined;
  close(): Promise<void>;
}

/**
 * Starts the supervisor: configuration from the environment, the embedded PostgreSQL when
 * `DATABASE_URL` is unset, migrations, then listening on HOST:PORT.
 */
export async function startSupervisor(env: NodeJS.ProcessEnv = process.env, overrides: Partial<SupervisorConfig> = {}): Promise<RunningSupervisor> {
  const config = loadSupervisorConfig(env, overrides);
  const log = new AppLogger(createRootLogger(config.logLevel));
  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dir: path.join(config.dataDir, 'pg'),
      fast: config.embeddedPgFast,
      log: (m) => log.pino.debug({ component: 'embedded-postgres' }, m),
    });
    databaseUrl = embedded.url;
    log.info({ port: embedded.port, data_dir: embedded.dataDir }, 'using embedded PostgreSQL');
  }
  const app = await createSupervisorApp(config, databaseUrl, log);
  await app.listen(config.port, config.host);
  const address = app.getHttpServer().address() as { port: number } | string;
  const port = typeof address === 'string' ? config.port : address.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  log.info({ url }, 'supervisor listening');
  return {
    app,
    url,
    databaseUrl,
    embedded,
    close: async () => {
      await app.close();
      await embedded?.stop();
    },
  };
}
