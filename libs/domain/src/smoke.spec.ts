describe('toolchain', () => {
  it('runs ESM TypeScript tests', async () => {
    const { z } = await import('zod');
    expect(z.string().safeParse(1).success).toBe(false);
  });
});
