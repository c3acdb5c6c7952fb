import { Controller, Get, Inject } from '@nestjs/common';
import { HIGH_RISK_CATEGORY_DEFAULTS, NORMAL_CATEGORY_DEFAULTS, TASK_CATEGORY_ALIASES } from '@app/domain';
import { type CapabilitiesResponse, CapabilitiesResponseSchema, LIMITS } from '@app/contracts';
import { ApiRoute, named } from '../http/api-route.js';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { AUTOPACK_VERSION } from '../version.js';

/** `GET /capabilities`: what this supervisor supports, for executors and operators. */
@Controller()
export class CapabilitiesController {
  constructor(@Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig) {}

  @Get('capabilities')
  @ApiRoute({ tag: 'meta', summary: 'Approval modes, providers, limits, version', response: named('Capabilities', CapabilitiesResponseSchema), errors: [401] })
  get(): CapabilitiesResponse {
    return {
      version: AUTOPACK_VERSION,
      approval_modes: ['auto', 'checkpoints', 'final'],
      safety_profiles: ['normal', 'safety_critical'],
      providers: ['openai', 'anthropic'],
      task_categories: {
        normal: Object.keys(NORMAL_CATEGORY_DEFAULTS),
        high_risk: Object.keys(HIGH_RISK_CATEGORY_DEFAULTS),
        aliases: TASK_CATEGORY_ALIASES,
      },
      llm_tools: ['submit_changes', 'submit_review', 'submit_plan'],
      limits: {
        lease_seconds: this.config.leaseSeconds,
        max_claim_wait_ms: LIMITS.maxClaimWaitMs,
        max_body_bytes: this.config.maxBodyBytes,
        max_phases_per_run: LIMITS.maxPhasesPerRun,
        max_tiers_per_run: LIMITS.maxTiersPerRun,
        max_parallel_phases: LIMITS.maxParallelPhases,
      },
      auth: { api_key_required: !!this.config.apiKey },
    };
  }
}
