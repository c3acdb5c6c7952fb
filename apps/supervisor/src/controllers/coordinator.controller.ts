import { z } from 'zod';
import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  type CoordinatorCycleTimes,
  CoordinatorCycleTimesResponseSchema,
  type CoordinatorPassResponse,
  type CycleTimesReport,
  CycleTimesReportSchema,
  CoordinatorPassResponseSchema,
  type CoordinatorService as CoordinatorServiceView,
  CoordinatorServicesResponseSchema,
  DomainError,
  ObserveServiceRequestSchema,
  type ObserveServiceResponse,
  ObserveServiceResponseSchema,
  ServiceNameSchema,
} from '@app/contracts';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { parseRouteBody } from '../http/validation.js';
import { CoordinatorService } from '../services/coordinator.service.js';

const ServicePathParamsSchema = z.strictObject({ service: ServiceNameSchema });

const ROUTES = {
  observe: {
    tag: 'coordinator',
    summary: "A coordinator's observation of a service's stage; starts the build or run that moves it on when none is active (one per service)",
    params: ServicePathParamsSchema,
    body: named('ObserveServiceRequest', ObserveServiceRequestSchema),
    response: named('ObserveServiceResponse', ObserveServiceResponseSchema),
    errors: [400, 401, 404, 413, 415, 422],
  },
  list: {
    tag: 'coordinator',
    summary: 'Services on the assembly line: stage, since when, active run, seconds spent in each finished stage',
    response: named('CoordinatorServices', CoordinatorServicesResponseSchema),
    errors: [401],
  },
  requestPass: {
    tag: 'coordinator',
    summary: '"Assign now": every running coordinator makes a pass at once (202)',
    response: named('CoordinatorPass', CoordinatorPassResponseSchema),
    success: 202,
    errors: [401],
  },
  latestPass: {
    tag: 'coordinator',
    summary: 'The newest pass request (polled by running coordinators)',
    response: named('CoordinatorPass', CoordinatorPassResponseSchema),
    errors: [401],
  },
  cycleTimes: {
    tag: 'coordinator',
    summary: 'Median and p90 seconds per stage across services (finished stays only)',
    response: named('CoordinatorCycleTimes', CoordinatorCycleTimesResponseSchema),
    errors: [401],
  },
  report: {
    tag: 'reports',
    summary: "The assembly line's cycle times: median and p90 per stage across services, and each service's time per stage",
    response: named('CycleTimesReport', CycleTimesReportSchema),
    errors: [401],
  },
} satisfies Record<string, ApiRouteSpec>;

/** The coordinator's assembly line (CONTRACT.md section 9). */
@Controller()
export class CoordinatorController {
  constructor(private readonly coordinator: CoordinatorService) {}

  @Post('coordinator/services/:service/observe')
  @HttpCode(200)
  @ApiRoute(ROUTES.observe)
  observe(@Param('service') service: string, @Body() body: unknown): Promise<ObserveServiceResponse> {
    if (!ServiceNameSchema.safeParse(service).success) throw new DomainError('NOT_FOUND', 'service not found');
    return this.coordinator.observe(service, parseRouteBody(ROUTES.observe, body));
  }

  @Get('coordinator/services')
  @ApiRoute(ROUTES.list)
  list(): Promise<CoordinatorServiceView[]> {
    return this.coordinator.list();
  }

  @Post('coordinator/pass')
  @HttpCode(202)
  @ApiRoute(ROUTES.requestPass)
  requestPass(): Promise<CoordinatorPassResponse> {
    return this.coordinator.requestPass();
  }

  @Get('coordinator/pass')
  @ApiRoute(ROUTES.latestPass)
  latestPass(): Promise<CoordinatorPassResponse> {
    return this.coordinator.latestPass();
  }

  @Get('reports/cycle_times')
  @ApiRoute(ROUTES.report)
  async report(): Promise<CycleTimesReport> {
    const [stages, services] = [await this.coordinator.cycleTimeStats(), await this.coordinator.list()];
    return {
      generated_at: new Date().toISOString(),
      stages,
      services: services.map((s) => ({ service: s.service, stage: s.stage, stage_since: s.stage_since, cycle_times: s.cycle_times })),
    };
  }

  @Get('coordinator/cycle_times')
  @ApiRoute(ROUTES.cycleTimes)
  cycleTimes(): Promise<CoordinatorCycleTimes> {
    return this.coordinator.cycleTimeStats();
  }
}
