/** Every test tier (test/jest/tiers.js); `npm run test:<tier>` runs one. */
import { runOf, tiers } from './test/jest/tiers.js';

export default runOf(tiers.unit, tiers.medium, tiers.e2e, tiers.reliability);
