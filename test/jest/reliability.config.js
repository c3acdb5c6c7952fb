import { runOf, tiers } from './tiers.js';

export default runOf(tiers.reliability);
