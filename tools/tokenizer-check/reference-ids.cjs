// Writes, into the folder given, what the reference tokenizers make of the check texts:
//   llama3-vocab.json   the real Llama 3 vocabulary and merges (from llama3-tokenizer-js; Meta's data: never commit)
//   llama3-hf/          the same as a Hugging Face tokenizer.json + tokenizer_config.json in Llama 3's layout
//   llama3-cases.json   [{text, ids}] by llama3-tokenizer-js's encoder
//   sp-cases.json       [{text, ids}] by SentencePiece itself (WebAssembly) for FOLDER/tok512.model, if present
// Texts: the first 300 paragraphs of ../shared/data/tinystories_validation_head.txt, then odd ones.
const fs = require('fs');
const path = require('path');
const out = process.argv[2];
const shared = process.argv[3] || path.join(__dirname, '..', '..', '..', 'shared');
const text = fs.readFileSync(path.join(shared, 'data', 'tinystories_validation_head.txt'), 'utf8');
const paragraphs = text.split(/\n\s*\n/).map(s => s.trim()).filter(s => s.length > 0).slice(0, 300);
const odd = ["Hello world's 12345 tokens!!\n\n  x", "  leading and trailing  ", "I'M DON'T we'll THEY'D",
  "naïve café 東京 😀🚀 ﷺ", "tabs\tand\r\nCRLF\n\n\nlines", "a\u00a0b\u2003c", "3.14159265358979 1,000,000", "   ",
  "\n", "x", "((((((()))))))....!!!???", "ſ K Ǆ ǅ 's 'S 'ſ", "مرحبا بالعالم", "  \n  \n", "Ġ Ċ ĠĠ"];
const specials = ["<|begin_of_text|>hi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat?", ""];

const llama3 = require('llama3-tokenizer-js').default ?? require('llama3-tokenizer-js');
const merges = [...llama3.merges.entries()].sort((a, b) => a[1] - b[1]).map(e => e[0]);
fs.writeFileSync(path.join(out, 'llama3-vocab.json'), JSON.stringify({vocab: llama3.vocabById, merges}));
const llamaCases = paragraphs.concat(odd, specials)
    .map(s => ({text: s, ids: llama3.encode(s, {bos: false, eos: false})}));
fs.writeFileSync(path.join(out, 'llama3-cases.json'), JSON.stringify(llamaCases));

const vocab = {};
const added = [];
llama3.vocabById.forEach((t, i) => {
  if (i < 128000) vocab[t] = i; else added.push({id: i, content: t, special: true});
});
const split = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
fs.mkdirSync(path.join(out, 'llama3-hf'), {recursive: true});
fs.writeFileSync(path.join(out, 'llama3-hf', 'tokenizer.json'), JSON.stringify({
  added_tokens: added,
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'Split', pattern: {Regex: split}, behavior: 'Isolated', invert: false},
    {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false}]},
  post_processor: {type: 'TemplateProcessing',
    single: [{SpecialToken: {id: '<|begin_of_text|>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}]},
  model: {type: 'BPE', byte_fallback: false, ignore_merges: true, vocab, merges: merges.map(m => m.split(' '))}}));
fs.writeFileSync(path.join(out, 'llama3-hf', 'tokenizer_config.json'),
    JSON.stringify({bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>'}));
console.log(`llama3: ${llama3.vocabById.length} tokens, ${merges.length} merges, ${llamaCases.length} texts`);

const model = path.join(out, 'tok512.model');
if (fs.existsSync(model)) {
  const { SentencePieceProcessor } = require('@sctg/sentencepiece-js');
  (async () => {
    const spp = new SentencePieceProcessor();
    await spp.load(model);
    const cases = paragraphs.concat(odd.slice(0, 8)).map(s => ({text: s, ids: spp.encodeIds(s)}));
    fs.writeFileSync(path.join(out, 'sp-cases.json'), JSON.stringify(cases));
    console.log(`sentencepiece: ${cases.length} texts`);
  })();
}
