import { Controller, Get } from '@nestjs/common';
import { type ExecutorView, ExecutorListResponseSchema } from '@app/contracts';
import { ApiRoute, named } from '../http/api-route.js';
import { ExecutorRegistryService } from '../services/executor-registry.service.js';

/** `GET /executors` (CONTRACT.md section 9): every executor seen, from its claims and heartbeats. */
@Controller()
export class ExecutorsController {
  constructor(private readonly registry: ExecutorRegistryService) {}

  @Get('executors')
  @ApiRoute({
    tag: 'executor',
    summary: 'Executors seen: capabilities, last seen (gone after three lease lengths), current phase, phases completed and failed',
    response: named('ExecutorList', ExecutorListResponseSchema),
    errors: [401],
  })
  list(): Promise<ExecutorView[]> {
    return this.registry.list();
  }
}
