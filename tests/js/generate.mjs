// Load an image-text-to-text export of qwen2vl-export with transformers.js from local
// files only, run greedy generation on one image and one prompt, and write the token
// ids to a JSON file. test_transformers_js.py compares them with transformers (Python).
//
// Usage:
//   node generate.mjs --model-dir DIR --image PNG --prompt TEXT --max-new-tokens N
//                     --output JSON [--pixel-values FILE] [--pixel-values-output FILE]
//
//   --model-dir            exported folder (config.json, onnx/, tokenizer files, ...)
//   --pixel-values         raw little-endian float32 file that replaces the processor's
//                          pixel_values; its shape must equal theirs
//   --pixel-values-output  write the processor's pixel_values there, same format
//
// The output JSON contains prompt_ids, image_grid_thw, pixel_values_shape,
// new_token_ids, the position_ids of the prompt's decoder run (prefill_position_ids,
// as {dims, data}) and the input and output names of each loaded session.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { AutoProcessor, Qwen2VLForConditionalGeneration, RawImage, Tensor, env } from '@huggingface/transformers';

const { values: args } = parseArgs({
    options: {
        'model-dir': { type: 'string' },
        image: { type: 'string' },
        prompt: { type: 'string' },
        'max-new-tokens': { type: 'string', default: '20' },
        output: { type: 'string' },
        'pixel-values': { type: 'string' },
        'pixel-values-output': { type: 'string' },
    },
    strict: true,
});

for (const name of ['model-dir', 'image', 'prompt', 'output']) {
    if (args[name] === undefined) {
        console.error(`generate.mjs: error: --${name} is required`);
        process.exit(2);
    }
}
const maxNewTokens = Number.parseInt(args['max-new-tokens'], 10);
if (!(maxNewTokens > 0)) {
    console.error(`generate.mjs: error: --max-new-tokens must be a positive integer, got '${args['max-new-tokens']}'`);
    process.exit(2);
}

// transformers.js resolves a model id as env.localModelPath/<id>. With remote models
// disabled, a missing file fails instead of being fetched from the hub.
const modelDir = path.resolve(args['model-dir']);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(modelDir) + path.sep;
const modelId = path.basename(modelDir);

const processor = await AutoProcessor.from_pretrained(modelId, { local_files_only: true });
// No dtype or device: the test checks that the defaults load the exported file names.
const model = await Qwen2VLForConditionalGeneration.from_pretrained(modelId, { local_files_only: true });

const messages = [
    {
        role: 'user',
        content: [{ type: 'image' }, { type: 'text', text: args.prompt }],
    },
];
const text = processor.tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
const image = await RawImage.read(path.resolve(args.image));
const inputs = await processor(text, image);

const pixelValues = inputs.pixel_values;
if (args['pixel-values-output']) {
    const data = Float32Array.from(pixelValues.data);
    fs.writeFileSync(args['pixel-values-output'], Buffer.from(data.buffer));
}
if (args['pixel-values']) {
    const bytes = fs.readFileSync(args['pixel-values']);
    const expectedBytes = pixelValues.size * Float32Array.BYTES_PER_ELEMENT;
    if (bytes.length !== expectedBytes) {
        console.error(
            `generate.mjs: error: --pixel-values ${args['pixel-values']} has ${bytes.length} bytes, ` +
                `expected ${expectedBytes} for shape [${pixelValues.dims}]`,
        );
        process.exit(2);
    }
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    inputs.pixel_values = new Tensor('float32', data, pixelValues.dims);
}

// Record the position_ids of the decoder's first run (the prompt), which transformers.js
// computes with its own get_rope_index, so that a position mismatch can be distinguished
// from a numeric one. transformers.js calls run() of the onnxruntime-node session.
const decoder = model.sessions.decoder_model_merged;
const runDecoder = decoder.run.bind(decoder);
let prefillPositionIds = null;
decoder.run = async (feeds, ...rest) => {
    if (prefillPositionIds === null) {
        const positions = feeds.position_ids;
        prefillPositionIds = { dims: positions.dims, data: Array.from(positions.data, Number) };
    }
    return runDecoder(feeds, ...rest);
};

// min_new_tokens masks the end-of-sequence token, so that a random model generates
// exactly max_new_tokens tokens on both sides of the comparison.
const sequences = await model.generate({
    ...inputs,
    max_new_tokens: maxNewTokens,
    min_new_tokens: maxNewTokens,
    do_sample: false,
});

const promptLength = inputs.input_ids.dims[1];
const allIds = sequences.tolist()[0].map(Number);
const sessions = Object.fromEntries(
    Object.entries(model.sessions).map(([name, session]) => [
        name,
        { inputs: session.inputNames, outputs: session.outputNames },
    ]),
);
const result = {
    prompt_ids: inputs.input_ids.tolist()[0].map(Number),
    image_grid_thw: inputs.image_grid_thw.tolist().map((row) => row.map(Number)),
    pixel_values_shape: pixelValues.dims,
    new_token_ids: allIds.slice(promptLength),
    prefill_position_ids: prefillPositionIds,
    sessions,
};
fs.writeFileSync(args.output, JSON.stringify(result, null, 2) + '\n');
