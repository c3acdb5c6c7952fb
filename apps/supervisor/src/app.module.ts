import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TerminusModule } from '@nestjs/terminus';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from './config.js';
import {
  CapabilitiesController,
  CoordinatorController,
  DashboardController,
  EventsController,
  HealthController,
  BuildsController,
  ExecutorsController,
  IssuesController,
  OpenApiController,
  OperatorController,
  PhasesController,
  ReportsController,
  RunsController,
} from './controllers/index.js';
import { dataSourceOptions } from './database/data-source.js';
import { AllExceptionsFilter } from './http/exception.filter.js';
import { AppLogger } from './http/logger.js';
import {
  BudgetRepository,
  CoordinatorRepository,
  DeliveryRepository,
  BuildRepository,
  ExecutorRepository,
  EventRepository,
  IdempotencyRepository,
  IssueRepository,
  PhaseRepository,
  RulesetRepository,
  RunRepository,
  StatsRepository,
  TierRepository,
} from './repositories/index.js';
import { EventStreamService } from './services/event-stream.service.js';
import { IdempotencyService } from './services/idempotency.service.js';
import { IssueService } from './services/issue.service.js';
import { MetricsService } from './services/metrics.service.js';
import { ProjectService } from './services/project.service.js';
import { ReportService } from './services/report.service.js';
import { HealthService } from './services/health.service.js';
import { LeaseSweeperService } from './services/lease-sweeper.service.js';
import { DATABASE_URL, NotificationHub } from './services/notification-hub.js';
import { BudgetService } from './services/budget.service.js';
import { ClaimService } from './services/claim.service.js';
import { LeaseService } from './services/lease.service.js';
import { PhaseReportService } from './services/phase-report.service.js';
import { PhaseWriteService } from './services/phase-write.service.js';
import { ProgressService } from './services/progress.service.js';
import { RunService } from './services/run.service.js';
import { JobQueue } from './services/job-queue.service.js';
import { OutboundSender } from './services/outbound-sender.js';
import { BuildService } from './services/build.service.js';
import { DeliveryService } from './services/delivery.service.js';
import { NotificationService } from './services/notification.service.js';
import { BuildOrchestrator } from './services/build-orchestrator.service.js';
import { ExecutorRegistryService } from './services/executor-registry.service.js';
import { CoordinatorService } from './services/coordinator.service.js';

/**
 * The one supervisor module (controllers -> services -> repositories -> entities). A
 * single module keeps the phase -> tier -> run cascade free of import cycles.
 */
@Module({})
export class AppModule {
  static forRoot(config: SupervisorConfig, databaseUrl: string, logger: AppLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [TypeOrmModule.forRoot({ ...dataSourceOptions(databaseUrl), migrationsRun: true, retryAttempts: 3, retryDelay: 1000 }), DiscoveryModule, TerminusModule.forRoot({ logger: false })],
      controllers: [RunsController, PhasesController, IssuesController, OperatorController, ReportsController, EventsController, CapabilitiesController, OpenApiController, HealthController, BuildsController, ExecutorsController, CoordinatorController, DashboardController],
      providers: [
        { provide: SUPERVISOR_CONFIG, useValue: config },
        { provide: DATABASE_URL, useValue: databaseUrl },
        { provide: AppLogger, useValue: logger },
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
        RunRepository,
        TierRepository,
        PhaseRepository,
        EventRepository,
        IssueRepository,
        IdempotencyRepository,
        IdempotencyService,
        BudgetRepository,
        RulesetRepository,
        StatsRepository,
        IssueService,
        ReportService,
        ProjectService,
        MetricsService,
        EventStreamService,
        ProgressService,
        RunService,
        PhaseWriteService,
        BudgetService,
        ClaimService,
        LeaseService,
        PhaseReportService,
        NotificationHub,
        LeaseSweeperService,
        HealthService,
        DeliveryRepository,
        BuildRepository,
        ExecutorRepository,
        JobQueue,
        OutboundSender,
        DeliveryService,
        BuildService,
        NotificationService,
        BuildOrchestrator,
        ExecutorRegistryService,
        CoordinatorRepository,
        CoordinatorService,
      ],
    };
  }
}
