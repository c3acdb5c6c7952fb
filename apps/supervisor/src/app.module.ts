import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from './config.js';
import { HealthController, PhasesController, RunsController } from './controllers/index.js';
import { dataSourceOptions } from './database/data-source.js';
import { AllExceptionsFilter } from './http/exception.filter.js';
import { AppLogger } from './http/logger.js';
import { EventRepository, PhaseRepository, RunRepository, TierRepository } from './repositories/index.js';
import { HealthService } from './services/health.service.js';
import { LeaseSweeperService } from './services/lease-sweeper.service.js';
import { DATABASE_URL, NotificationHub } from './services/notification-hub.js';
import { PhaseService } from './services/phase.service.js';
import { ProgressService } from './services/progress.service.js';
import { RunService } from './services/run.service.js';

/**
 * The one supervisor module (controllers -> services -> repositories -> entities). A
 * single module keeps the phase -> tier -> run cascade free of import cycles.
 */
@Module({})
export class AppModule {
  static forRoot(config: SupervisorConfig, databaseUrl: string, logger: AppLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [TypeOrmModule.forRoot({ ...dataSourceOptions(databaseUrl), migrationsRun: true, retryAttempts: 3, retryDelay: 1000 })],
      controllers: [RunsController, PhasesController, HealthController],
      providers: [
        { provide: SUPERVISOR_CONFIG, useValue: config },
        { provide: DATABASE_URL, useValue: databaseUrl },
        { provide: AppLogger, useValue: logger },
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
        RunRepository,
        TierRepository,
        PhaseRepository,
        EventRepository,
        ProgressService,
        RunService,
        PhaseService,
        NotificationHub,
        LeaseSweeperService,
        HealthService,
      ],
    };
  }
}
