/** Layer rules, enforced in CI (npm run lint). See docs/ARCHITECTURE.md. */
module.exports = {
  forbidden: [
    { name: 'libs-framework-free', severity: 'error', comment: 'libs/* never import NestJS or TypeORM',
      from: { path: '^libs/' }, to: { path: 'node_modules/(@nestjs|typeorm)/' } },
    { name: 'libs-never-import-apps', severity: 'error', from: { path: '^libs/' }, to: { path: '^apps/' } },
    { name: 'contracts-are-leaves', severity: 'error', comment: 'contracts import only zod',
      from: { path: '^libs/contracts/' }, to: { path: '^libs/(domain|llm|git|testing)/' } },
    { name: 'domain-imports-contracts-only', severity: 'error',
      from: { path: '^libs/domain/' }, to: { path: '^libs/(llm|git|testing)/' } },
    { name: 'product-never-imports-testing', severity: 'error', comment: 'the product does not know the scripted LLM server exists',
      from: { path: '^(apps/(supervisor|executor)|libs/(contracts|domain|llm|git))/' }, to: { path: '^libs/testing/' } },
    { name: 'executor-no-nest', severity: 'error', comment: 'the executor is a plain Node program',
      from: { path: '^apps/executor/' }, to: { path: '(node_modules/(@nestjs|typeorm|pg)/|^apps/supervisor/)' } },
    { name: 'supervisor-not-executor', severity: 'error', from: { path: '^apps/supervisor/' }, to: { path: '^apps/executor/' } },
    { name: 'controllers-no-persistence', severity: 'error', comment: 'controllers -> services -> repositories -> entities',
      from: { path: '^apps/supervisor/src/controllers/' }, to: { path: '(^apps/supervisor/src/(repositories|entities)/|node_modules/typeorm/)' } },
    { name: 'services-no-controllers', severity: 'error', from: { path: '^apps/supervisor/src/(services|repositories|entities)/' }, to: { path: '^apps/supervisor/src/controllers/' } },
    { name: 'repositories-no-services', severity: 'error', from: { path: '^apps/supervisor/src/(repositories|entities)/' }, to: { path: '^apps/supervisor/src/services/' } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
    exclude: { path: '(\\.spec\\.ts$|^dist/)' },
  },
};
