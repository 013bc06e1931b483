import { initEngine, tf } from '../../src/densenet/tf-runtime.ts';

/** Every engine test runs on native TensorFlow: the backend production uses. */
export async function useNativeEngine(): Promise<typeof tf> {
  await initEngine({ backend: 'tensorflow', intraOpThreads: 2, interOpThreads: 1, oneDnn: false });
  return tf;
}
