export default async function globalTeardown() {
  await globalThis.__AUTOPACK_EMBEDDED_PG__?.stop();
}
