import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { RulesetEntity } from '../entities/index.js';

/** Per-project strategy rulesets. */
@Injectable()
export class RulesetRepository {
  /** The ruleset of a project, if any. */
  async find(em: EntityManager, projectId: string): Promise<RulesetEntity | null> {
    return em.getRepository(RulesetEntity).findOne({ where: { projectId } });
  }

  /** Replaces the ruleset of a project. */
  async save(em: EntityManager, projectId: string, ruleset: Record<string, Record<string, unknown>>): Promise<RulesetEntity> {
    return em.getRepository(RulesetEntity).save({ projectId, ruleset, updatedAt: new Date() });
  }
}
