import 'reflect-metadata';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { type SupervisorConfig, loadSupervisorConfig } from './config.js';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from './database/embedded-postgres.js';
import { apiKeyMiddleware, jsonBodyMiddleware, writeRateLimitMiddleware } from './http/edge-middleware.js';
import { AppLogger, createRootLogger, requestLogger, routePattern } from './http/logger.js';
import { createRequire } from 'node:module';
import express, { type NextFunction, type Request, type Response } from 'express';
import { MetricsService } from './services/metrics.service.js';
import { EventStreamService } from './services/event-stream.service.js';
import { attachRunStreamWebSocket } from './http/websocket.js';
import { dashboardDir } from './http/dashboard.js';

const swaggerUiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Builds the Nest application (middleware, filter, module) without listening; reused by e2e tests. */
export async function createSupervisorApp(
  config: SupervisorConfig,
  databaseUrl: string,
  logger?: AppLogger,
  /** Fault injection for tests: runs before authentication and routing. */
  opts: { intercept?: (req: Request, res: Response, next: NextFunction) => void } = {},
): Promise<INestApplication> {
  const log = logger ?? new AppLogger(createRootLogger(config.logLevel, undefined, config.logFormat));
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, databaseUrl, log), {
    bodyParser: false,
    logger: log,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestLogger(log.pino));
  if (opts.intercept) app.use(opts.intercept);
  const metrics = app.get(MetricsService);
  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      // The matched route pattern keeps label cardinality bounded (ids never become labels).
      const labels = { method: req.method, route: routePattern(req), status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      end(labels);
    });
    next();
  });
  app.use(apiKeyMiddleware(config.apiKey));
  app.use(writeRateLimitMiddleware(config.rateLimitPerSecond, config.rateLimitBurst));
  app.use(jsonBodyMiddleware(config.maxBodyBytes));
  app.use('/docs/assets', express.static(swaggerUiDir, { index: false, fallthrough: false }));
  // The dashboard's built code (names carry content hashes, so they may be cached for good).
  app.use('/dashboard/assets', express.static(path.join(dashboardDir(), 'assets'), { index: false, fallthrough: false, immutable: true, maxAge: '1y' }));
  app.enableShutdownHooks();
  await app.init();
  const wss = attachRunStreamWebSocket(app.getHttpServer(), app.get(EventStreamService), config.apiKey);
  app.getHttpServer().on('close', () => wss.close());
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
  const log = new AppLogger(createRootLogger(config.logLevel, undefined, config.logFormat));
  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dir: path.join(config.dataDir, 'pg'),
      fast: config.embeddedPgFast,
      log: (m) => log.pino.debug({ component: 'embedded-postgres' }, m),
      // The one line saying the cluster lives elsewhere (a checkout only root can enter).
      notice: (line) => log.warn({ component: 'embedded-postgres' }, line),
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
