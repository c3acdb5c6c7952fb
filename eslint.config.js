import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.autopack/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      // One import statement per module: a second one beside it is how duplicated imports crept in.
      'no-duplicate-imports': 'error',
    },
  },
  {
    // Libraries stay framework-free so the executor remains a plain Node program.
    files: ['libs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@nestjs/*', 'typeorm', 'typeorm/*'], message: 'libs/* must stay framework-free' },
        { group: ['@app/*/src/*'], message: 'import a library through its index' },
      ] }],
    },
  },
  {
    files: ['apps/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@app/*/src/*', '**/libs/*/src/*'], message: 'import a library through @app/<lib>' },
      ] }],
    },
  },
  {
    // Tests read JSON responses field by field; typing every body would add nothing.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', module: 'writable', require: 'readonly', URL: 'readonly', globalThis: 'readonly' } },
  },
);
