// The linter (`npm run lint`, and within `npm test` through test/checks.test.ts): ESLint's and
// typescript-eslint's recommended rules on every TypeScript file, without type information (fast).
// A rule switched off here says why.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/', 'test/fixtures/', 'bench/out/', 'test/golden/expected/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', structuredClone: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', fetch: 'readonly' },
    },
    rules: {
      // Unused names are errors, except those marked unused on purpose (_x) and rest siblings.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Tests and the page's untyped d3 callbacks use `any` where the data is whatever a foreign format holds.
      '@typescript-eslint/no-explicit-any': 'off',
      // `x!` after a check the compiler cannot follow (index < length) is how this code base says "present".
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Stripping control characters from untrusted text (trace strings, logs) is what such regexes are here for.
      'no-control-regex': 'off',
      // Walking a chain of parent scopes starts from `this`.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
  {
    files: ['web/**/*.ts'],
    languageOptions: { globals: { document: 'readonly', window: 'readonly', HTMLElement: 'readonly', Element: 'readonly', getComputedStyle: 'readonly', requestAnimationFrame: 'readonly', ResizeObserver: 'readonly', MouseEvent: 'readonly', KeyboardEvent: 'readonly', Event: 'readonly', location: 'readonly', history: 'readonly', navigator: 'readonly' } },
  },
);
