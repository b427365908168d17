"""Sample from a saved microGPT model and keep only the samples that are not in the training data.

Uses microgpt.py's forward pass on floats (no autograd); with the same model, data and seed its output
file is byte-identical to the seed project's generate.py. New: `-n`, `-t` and `--prompt`.

    python generate.py                                   # model.json, data/names.txt, 100 samples
    python generate.py -m model.json -i data/names.txt -o new_names.txt -s 7 -n 50 --prompt em
"""
import argparse
import os
import random
import sys

from microgpt import MicroGPTError, load_model, read_docs, sample, write_atomic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Generate new samples from a microGPT JSON model.")
    p.add_argument("-m", "--model", default="model.json", help="model JSON written by microgpt.py")
    p.add_argument("-i", "--input", default="input.txt",
                   help="training data (one document per line); samples found in it are dropped")
    p.add_argument("-o", "--output", default="generated_new_samples.txt", help="where to write the new samples")
    p.add_argument("-s", "--seed", type=int, default=42, help="random seed")
    p.add_argument("-n", "--num_samples", type=int, default=100, help="number of samples to draw")
    p.add_argument("-t", "--temperature", type=float, default=0.5, help="sampling temperature (> 0)")
    p.add_argument("--prompt", default="", help="every sample starts with this text (it is fed to the model)")
    return p.parse_args(argv)


def run(args):
    if args.num_samples < 1 or args.temperature <= 0:
        raise MicroGPTError("-n/--num_samples must be >= 1 and -t/--temperature > 0")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise MicroGPTError(f"-o {args.output}: folder does not exist")
    print(f"Loading model from {args.model}...")
    model = load_model(args.model)
    c = model.config
    print(f"Model loaded: vocab_size={c['vocab_size']}, n_layer={c['n_layer']}, n_embd={c['n_embd']}")
    print(f"Loading training data from {args.input}...")
    training = set(read_docs(args.input))
    print(f"Training data: {len(training)} unique documents")
    rng = random.Random(args.seed)
    n = args.num_samples
    print(f"\n--- Generating {n} samples (temperature={args.temperature}) ---")
    new, duplicates = [], 0
    for i in range(n):
        s = sample(model, rng, args.temperature, args.prompt)
        if s in training:
            duplicates += 1
        else:
            new.append(s)
        if (i + 1) % 10 == 0:
            print(f"Progress: {i + 1}/{n} samples generated | New: {len(new)} | Duplicates: {duplicates}")
    print(f"\n--- Results ---\nTotal generated: {n}\nDuplicates (in training data): {duplicates}")
    print(f"New unique samples: {len(new)}")
    print("\n--- New Samples (not in training data) ---")
    for i, s in enumerate(new):
        print(f"{i + 1:3d}: {s}")
    write_atomic(args.output, "".join(s + "\n" for s in new))
    print(f"\nSaved new samples to {args.output} (新しいサンプルを {args.output} に保存しました。)")


def main(argv=None):
    try:
        run(parse_args(argv))
    except MicroGPTError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: no output written")


if __name__ == "__main__":
    main()
