import { DomainError } from '@app/contracts';
import { mapError } from './error-mapping.js';

describe(mapError.name, () => {
  it('maps domain errors by their code', () => {
    expect(mapError(new DomainError('INVALID_TRANSITION', 'no'))).toMatchObject({ status: 409, body: { error: { code: 'INVALID_TRANSITION', message: 'no' } }, unexpected: false });
  });

  it.each([
    ['a deadlock', '40P01'],
    ['a serialization failure', '40001'],
  ])('maps %s (nothing written) to a 409 the client may repeat, not a 500', (_what, code) => {
    const err = Object.assign(new Error('deadlock detected'), { driverError: { code } });
    expect(mapError(err)).toMatchObject({ status: 409, body: { error: { code: 'STALE_STATE' } }, unexpected: false });
  });

  it('hides anything else behind an error id', () => {
    const mapped = mapError(new Error('secret detail'));
    expect(mapped.status).toBe(500);
    expect(mapped.unexpected).toBe(true);
    expect(JSON.stringify(mapped.body)).not.toContain('secret detail');
  });
});
