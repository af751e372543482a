boot -device edu
