import { runOf, tiers } from './tiers.js';

export default runOf(tiers.e2e);
