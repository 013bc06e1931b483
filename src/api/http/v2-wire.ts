// The Open Inference Protocol's REST body ↔ the protocol model (../oip). Only what is HTTP's own
// is decided here: tensor data as JSON `data` (flat or nested; BYTES as base64 strings) or, with
// the binary data extension, as raw bytes after the JSON header (`binary_data_size`); outputs in
// JSON or, when asked (`binary_data` per output or `binary_data_output` for all), binary after
// the header. A request without an id gets the HTTP request id in the answer.
import { invalidInput } from '../../errors.ts';
import type { InferRequest as OipRequest, InferResponse, Parameters, TensorData } from '../oip/index.ts';
import { float32ToLE, joinBytesElements } from '../oip/index.ts';
import { BinaryReader, composeBinaryResponse } from './binary-data.ts';
import type { InferRequest } from './schemas.ts';

export type InferReply =
  | { binary: false; json: Record<string, unknown> }
  | { binary: true; body: Buffer; headerLength: number };

interface OutputTensorJson {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  parameters?: { binary_data_size: number };
  data?: number[] | string[];
}

export function toInferRequest(body: InferRequest, binary: Buffer, ref: { model: string; version?: string }): OipRequest {
  const reader = new BinaryReader(binary);
  const inputs = body.inputs.map((input, i) => {
    const at = `inputs[${i}]`;
    const binarySize = input.parameters?.binary_data_size;
    let data: TensorData;
    if (binarySize !== undefined) {
      if (input.data !== undefined) throw invalidInput(`${at}.data`, 'must be absent when parameters.binary_data_size is set');
      data = { kind: 'raw', bytes: reader.take(binarySize, `${at}.parameters.binary_data_size`), field: `${at}.parameters.binary_data_size` };
    } else if (input.data === undefined) {
      throw invalidInput(`${at}.data`, 'required (or parameters.binary_data_size with the binary data extension)');
    } else {
      data = { kind: 'values', values: input.data, field: `${at}.data` };
    }
    return { name: input.name, datatype: input.datatype, shape: input.shape, parameters: (input.parameters ?? {}) as Parameters, data };
  });
  reader.finish();
  return {
    modelName: ref.model,
    ...(ref.version !== undefined ? { modelVersion: ref.version } : {}),
    ...(body.id !== undefined ? { id: body.id } : {}),
    parameters: (body.parameters ?? {}) as Parameters,
    inputs,
    outputs: (body.outputs ?? []).map((o) => ({ name: o.name, parameters: (o.parameters ?? {}) as Parameters })),
  };
}

export function toInferReply(response: InferResponse, body: InferRequest, requestId: string): InferReply {
  const binaryByDefault = body.parameters?.binary_data_output === true;
  const outputs: OutputTensorJson[] = [];
  const sections: Buffer[] = [];
  for (const output of response.outputs) {
    const header = { name: output.name, datatype: output.datatype, shape: output.shape };
    if ((output.plan.parameters.binary_data ?? binaryByDefault) === true) {
      const section = output.datatype === 'FP32' ? float32ToLE(output.data) : joinBytesElements(output.data);
      sections.push(section);
      outputs.push({ ...header, parameters: { binary_data_size: section.length } });
    } else {
      outputs.push({
        ...header,
        data: output.datatype === 'FP32' ? Array.from(output.data) : output.data.map((e) => Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('utf8')),
      });
    }
  }
  const json = { model_name: response.modelName, model_version: response.modelVersion, id: response.id || requestId, outputs };
  if (sections.length === 0) return { binary: false, json };
  return { binary: true, ...composeBinaryResponse(json, sections) };
}
