#!/usr/bin/env bash
# The README's two pictures, from real runs: the original and the repaired recipe trained with the same seed for
# the same iterations, a grid of each (docs/readme-grids.png), and the recipe's training as an animation
# (docs/readme-training.gif). Usage: bash scripts/readme_pictures.sh DATA_DIR [ITERATIONS]  (about 10 minutes on
# two cores at the default 1,000 iterations; DATA_DIR holds the four MNIST files).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
data=$(realpath "$1")
iterations=${2:-1000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for recipe in original repaired; do
    .venv/bin/python train.py --recipe "$recipe" --seed 0 --data-dir "$data" --valid-size 2000 \
        --max-iterations "$iterations" --log compact --log-every 100 --step 50 \
        --run-dir "$work/$recipe" --vis-dir "$work/vis-$recipe" > /dev/null
    .venv/bin/python -m dcgan_mnist generate --checkpoint "$work/$recipe" --per-digit 10 --seed 0 --scale 2 \
        --out "$work/$recipe.png" > /dev/null
done
.venv/bin/python scripts/side_by_side.py docs/readme-grids.png \
    "$work/original.png" "original, $iterations iterations" "$work/repaired.png" "--recipe repaired, $iterations iterations"
.venv/bin/python -m dcgan_mnist gif --vis-dir "$work/vis-repaired" --out docs/readme-training.gif --duration 150
