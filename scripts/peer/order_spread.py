#!/usr/bin/python3
"""How far does the data order alone move oodguard's official-recipe UM on Fashion-MNIST?
(docs/peer.md). Per seed: oodguard's run in its own order (seed-S/um/um-cestimate-e100), its
replicates at the same c in other orders (fmnist_peer.sh S oodguard-um-estimate-e100 with
PEER_SEED=N: oodguard-um-estimate-e100-shuffleN) and the PyTorch peer in oodguard's order of
seed S (peer-um-estimate-e100-oodguardorder); each against the start model (epoch 60).
Prints a markdown table and the spreads. Usage: /usr/bin/python3 scripts/peer/order_spread.py
[-runs DIR] [-peer DIR] [-orders 101,102]"""
import argparse
import os
import statistics as st
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import model_row  # noqa: E402  (the same evaluation reading as docs/peer.md's tables)


def ms(v):
    return f"{st.mean(v):.1f} ± {st.stdev(v):.1f}" if len(v) > 1 else (f"{v[0]:.1f}" if v else "–")


ap = argparse.ArgumentParser()
ap.add_argument("-runs", default="/root/oodguard-runs/fmnist-mem")
ap.add_argument("-peer", default="/root/oodguard-runs/peer/fmnist")
ap.add_argument("-orders", default="101,102")
ap.add_argument("-seeds", default="1,2,3")
a = ap.parse_args()
orders = a.orders.split(",")
print("| seed | start: ID acc / unseen FPR95 | oodguard, order S | " + " | ".join(f"oodguard, order {o}" for o in orders) +
      " | PyTorch peer, order S |")
print("|---|---|---|" + "---|" * len(orders) + "---|")
og, peer, within, gain_og, gain_peer = [], [], [], [], []
for s in a.seeds.split(","):
    R, P = os.path.join(a.runs, f"seed-{s}"), os.path.join(a.peer, f"seed-{s}")
    start = model_row(R, "train/epoch-060")
    runs = [model_row(R, "um/um-cestimate-e100")] + [model_row(P, f"um/oodguard-um-estimate-e100-shuffle{o}") for o in orders]
    p = model_row(P, "um/peer-um-estimate-e100-oodguardorder")
    cell = lambda r: "–" if r is None else f"{r['id_acc']:.2f} / {r['unseen_fpr95']:.1f}"
    print(f"| {s} | {cell(start)} | " + " | ".join(cell(r) for r in runs) + f" | {cell(p)} |")
    got = [r for r in runs if r]
    og += [r["unseen_fpr95"] for r in got]
    gain_og += [r["unseen_fpr95"] - start["unseen_fpr95"] for r in got]
    if len(got) > 1:
        within.append(st.stdev(r["unseen_fpr95"] for r in got))
    if p:
        peer.append(p["unseen_fpr95"])
        gain_peer.append(p["unseen_fpr95"] - start["unseen_fpr95"])
print()
print(f"oodguard, every order and seed (n = {len(og)}): unseen FPR95 {ms(og)}, change against the start model {ms(gain_og)}")
print(f"oodguard, sd over orders within a seed: {', '.join(f'{w:.1f}' for w in within)}")
print(f"peer (n = {len(peer)}): unseen FPR95 {ms(peer)}, change {ms(gain_peer)}")
