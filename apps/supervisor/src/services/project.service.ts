import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError, type ProjectRuleset } from '@app/contracts';
import { type CategoryDefaults, HIGH_RISK_CATEGORY_DEFAULTS, NORMAL_CATEGORY_DEFAULTS, TASK_CATEGORY_ALIASES } from '@app/domain';
import { RulesetRepository } from '../repositories/index.js';

const TO_DOMAIN: Record<string, keyof CategoryDefaults> = {
  complexity: 'complexity',
  ci_profile: 'ciProfile',
  max_builder_attempts: 'maxBuilderAttempts',
  max_auditor_attempts: 'maxAuditorAttempts',
  max_abandonments: 'maxAbandonments',
  incident_token_cap: 'incidentTokenCap',
  auto_apply: 'autoApply',
  auditor_profile: 'auditorProfile',
  default_severity: 'defaultSeverity',
};

/** Per-project strategy rulesets (stored in the database, applied when a run starts). */
@Injectable()
export class ProjectService {
  constructor(
    private readonly ds: DataSource,
    private readonly rulesets: RulesetRepository,
  ) {}

  /** The stored overrides of a project, in the API's snake_case. */
  async getRuleset(projectId: string): Promise<ProjectRuleset & { project_id: string }> {
    const row = await this.rulesets.find(this.ds.manager, projectId);
    const categories: ProjectRuleset['categories'] = {};
    for (const [cat, values] of Object.entries(row?.ruleset ?? {})) {
      categories[cat] = Object.fromEntries(Object.entries(TO_DOMAIN).filter(([, d]) => d in values).map(([api, d]) => [api, values[d]]));
    }
    return { project_id: projectId, categories };
  }

  /** Replaces the overrides; keys are resolved through the v7 aliases and must be known categories. */
  async putRuleset(projectId: string, body: ProjectRuleset): Promise<ProjectRuleset & { project_id: string }> {
    const known = new Set([...Object.keys(HIGH_RISK_CATEGORY_DEFAULTS), ...Object.keys(NORMAL_CATEGORY_DEFAULTS), 'generic']);
    const stored: Record<string, Record<string, unknown>> = {};
    for (const [cat, values] of Object.entries(body.categories)) {
      const key = TASK_CATEGORY_ALIASES[cat] ?? cat;
      if (!known.has(key)) {
        throw new DomainError('VALIDATION_FAILED', `unknown task category ${cat}`, { known: [...known].sort() });
      }
      stored[key] = Object.fromEntries(Object.entries(values).map(([api, v]) => [TO_DOMAIN[api], v]));
    }
    await this.rulesets.save(this.ds.manager, projectId, stored);
    return this.getRuleset(projectId);
  }
}
