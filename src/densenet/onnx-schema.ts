// The part of ONNX's ModelProto that the DenseNet export writes, encoded by protobufjs.
//
// Messages, field names, numbers and types follow the ONNX IR spec, onnx/onnx.proto
// (github.com/onnx/onnx, Apache-2.0), written out here for the fields we use and no others:
// a field left out of this subset is simply never written, and readers skip fields they do
// not know. proto2 as in the original, so repeated int64 (dims, ints) keeps its unpacked
// encoding. test/densenet/onnx-export.test.ts decodes our output with onnx-proto (a separate
// compilation of ONNX's own schema) and runs it in onnxruntime, so a wrong number here fails.
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package onnx;

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message AttributeProto {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  repeated int64 ints = 8;
  optional int32 type = 20;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
`;

/** TensorProto.DataType and AttributeProto.AttributeType values the export uses. */
export const DATA_TYPE = { FLOAT: 1 } as const;
export const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, INTS: 7 } as const;

// protobufjs's camelCase names for the schema above; one interface per message.
export interface OnnxModel {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  docString: string;
  graph: OnnxGraph;
  opsetImport: { domain: string; version: number }[];
  metadataProps: { key: string; value: string }[];
}

export interface OnnxGraph {
  node: OnnxNode[];
  name: string;
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  attribute: OnnxAttribute[];
}

export type OnnxAttribute = { name: string } & (
  | { type: typeof ATTRIBUTE_TYPE.FLOAT; f: number }
  | { type: typeof ATTRIBUTE_TYPE.INT; i: number }
  | { type: typeof ATTRIBUTE_TYPE.INTS; ints: number[] }
);

export interface OnnxTensor {
  dims: number[];
  dataType: number;
  name: string;
  rawData: Uint8Array;
}

export interface OnnxValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: ({ dimValue: number } | { dimParam: string })[] } } };
}

const ModelProto = protobuf.parse(SCHEMA).root.lookupType('onnx.ModelProto');

/** The ModelProto's bytes. Each raw_data is copied once, into the one output buffer. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  return ModelProto.encode(model).finish();
}
