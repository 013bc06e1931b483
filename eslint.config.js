import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'tools/', 'training/', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', {
        paths: [
          { name: '@tensorflow/tfjs-node', message: 'Import tf from src/densenet/tf-runtime.ts: it owns the engine choice.' },
          { name: '@tensorflow/tfjs', message: 'Import tf from src/densenet/tf-runtime.ts.' },
        ],
      }],
    },
  },
  {
    files: ['src/densenet/tf-runtime.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
