// Native-engine predict time of the DenseNet tfjs model (random weights: speed does not depend
// on values). Usage: npx tsx bench/densenet-predict.ts [preset] [batch sizes…]
//   npx tsx bench/densenet-predict.ts densenet121 1 8
import { initEngine, tf, type Tensor } from '../src/densenet/tf-runtime.ts';
import { buildDenseNet, isPresetName, presetConfig } from '../src/densenet/index.ts';
import { availableCores } from '../src/config.ts';

const [preset = 'densenet121', ...sizes] = process.argv.slice(2);
if (!isPresetName(preset)) throw new Error(`unknown preset ${preset}`);
const batches = sizes.length ? sizes.map(Number) : [1, 8];
const engine = await initEngine({ backend: 'tensorflow', intraOpThreads: availableCores(), interOpThreads: 1, oneDnn: false });
const model = buildDenseNet(presetConfig(preset));
const { inputHeight: h, inputWidth: w, inputChannels: c } = model.config;

console.log(`${preset} on ${engine.backend} (TF ${engine.tensorflowVersion}), ${availableCores()} cores`);
console.log('batch  ms/batch  images/s');
for (const batch of batches) {
  const x = tf.randomNormal([batch, h, w, c]);
  const once = () => tf.tidy(() => (model.layersModel.predict(x) as Tensor).dataSync());
  once();
  once();
  const rounds = Math.max(3, Math.ceil(8 / batch));
  const started = performance.now();
  for (let i = 0; i < rounds; i++) once();
  const ms = (performance.now() - started) / rounds;
  console.log(`${String(batch).padStart(5)}  ${ms.toFixed(1).padStart(8)}  ${((batch * 1000) / ms).toFixed(1).padStart(8)}`);
  x.dispose();
}
