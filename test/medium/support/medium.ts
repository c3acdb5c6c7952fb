import 'reflect-metadata';
import type { Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { AppModule } from '../../../apps/supervisor/src/app.module.js';
import { type SupervisorConfig, loadSupervisorConfig } from '../../../apps/supervisor/src/config.js';
import { AppLogger, createRootLogger } from '../../../apps/supervisor/src/http/logger.js';
import type { TestDatabase } from '../../support/database.js';
import { Factories } from './factories.js';
import { createMediumDatabase } from './template-database.js';

/** The supervisor's services on a database of their own, for one medium spec file. */
export interface MediumContext {
  /** The spec file's database (cloned from the migrated template), for SQL assertions. */
  db: TestDatabase;
  /** The supervisor's own TypeORM data source on that database. */
  ds: DataSource;
  config: SupervisorConfig;
  module: TestingModule;
  /** Row factories: `makeRun`, `makeTier`, `makePhase({ state, lease })`, `makeAttempt`, … */
  factory: Factories;
  /** A provider of the supervisor's module by class (a service, a repository, …). */
  get<T>(type: Type<T>): T;
  /** Closes the module (its connections) and drops the database (unless it was given). */
  close(): Promise<void>;
}

export interface MediumOptions {
  /** Configuration overrides (the defaults are those of an empty environment). */
  config?: Partial<SupervisorConfig>;
  /**
   * Runs the lifecycle hooks, as the process does on start: NotificationHub opens its LISTEN
   * connection, LeaseSweeperService starts its timer and the job queue (JobQueue) its workers,
   * which then work the jobs requested (deliveries). Off by default: most specs call
   * services directly and want nothing to run behind their back.
   */
  init?: boolean;
  /**
   * Builds the module on this database instead of a fresh clone, as a restarted supervisor
   * would find it; `close` then leaves the database to its owner.
   */
  database?: TestDatabase;
  /** The supervisor's logger (default: the process logger at the configured level, silent). */
  logger?: AppLogger;
}

/**
 * Builds the supervisor's real module (`AppModule`: every provider, the real TypeORM data
 * source) on a fresh database cloned from the template. Nothing listens on HTTP. Use it in
 * `beforeAll` and close it in `afterAll`; factories then insert exactly the rows a test needs.
 */
export async function createMediumContext(opts: MediumOptions = {}): Promise<MediumContext> {
  const db = opts.database ?? (await createMediumDatabase());
  const drop = opts.database ? async () => undefined : () => db.drop();
  try {
    const config = loadSupervisorConfig({ AUTOPACK_LOG_LEVEL: 'silent' }, opts.config);
    const logger = opts.logger ?? new AppLogger(createRootLogger(config.logLevel));
    const module = await Test.createTestingModule({ imports: [AppModule.forRoot(config, db.url, logger)] })
      .setLogger(logger)
      .compile();
    if (opts.init) await module.init();
    const ds = module.get(DataSource);
    return {
      db,
      ds,
      config,
      module,
      factory: new Factories(ds),
      get: (type) => module.get(type),
      close: async () => {
        await module.close();
        await drop();
      },
    };
  } catch (err) {
    await drop();
    throw err;
  }
}
