"""The padded path is exact: it equals PyTorch's packed multi-layer RNNs to 1e-5."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.errors import ConfigError
from rnnkit.models.dropout import LockedDropout
from rnnkit.models.encoder import (
    CELLS,
    EncoderConfig,
    RecurrentEncoder,
    detach_state,
    reverse_within_length,
)

LENGTHS = torch.tensor([7, 1, 4, 7, 2])  # ragged, with a length-1 sequence and two full ones


def reference_from(encoder: RecurrentEncoder) -> nn.RNNBase:
    """A standard multi-layer torch RNN holding exactly the encoder's weights."""
    cfg = encoder.config
    ref = CELLS[cfg.cell](
        cfg.input_size,
        cfg.hidden_size,
        num_layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
        batch_first=True,
    )
    with torch.no_grad():
        for layer, directions in enumerate(encoder.layers):
            for direction, module in enumerate(directions):
                suffix = "_reverse" if direction else ""
                for name, param in module.named_parameters():
                    getattr(ref, name.replace("_l0", f"_l{layer}{suffix}")).copy_(param)
    return ref


def mask(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    valid = torch.arange(outputs.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    return outputs * valid.unsqueeze(-1)


CASES = list(itertools.product(CELLS, [False, True], [1, 2]))


@pytest.mark.parametrize(("cell", "bidirectional", "num_layers"), CASES)
@pytest.mark.parametrize("with_state", [False, True])
def test_padded_equals_packed_reference(cell, bidirectional, num_layers, with_state) -> None:
    torch.manual_seed(0)
    cfg = EncoderConfig(cell, 3, 5, num_layers=num_layers, bidirectional=bidirectional)
    encoder = RecurrentEncoder(cfg).eval()
    ref = reference_from(encoder).eval()
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), 3)
    x = mask(x, LENGTHS) + 100.0 * (~mask(torch.ones_like(x), LENGTHS).bool())  # loud padding
    state = None
    if with_state:
        shape = (num_layers * (2 if bidirectional else 1), len(LENGTHS), 5)
        state = (torch.randn(shape), torch.randn(shape)) if cell == "lstm" else torch.randn(shape)

    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    ref_out, ref_state = ref(packed, state)
    ref_out, _ = pad_packed_sequence(ref_out, batch_first=True, total_length=x.size(1))

    for use_packing in (False, True):
        out, final = encoder(x, LENGTHS, state, packed=use_packing)
        torch.testing.assert_close(mask(out, LENGTHS), ref_out, atol=1e-5, rtol=1e-5)
        if cell == "lstm":
            torch.testing.assert_close(final[0], ref_state[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(final[1], ref_state[1], atol=1e-5, rtol=1e-5)
        else:
            torch.testing.assert_close(final, ref_state, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", list(CELLS))
def test_gradients_match_the_packed_reference(cell: str) -> None:
    torch.manual_seed(1)
    encoder = RecurrentEncoder(EncoderConfig(cell, 3, 4, num_layers=2, bidirectional=True))
    ref = reference_from(encoder)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), 3)
    out, _ = encoder(x, LENGTHS, return_state=False)
    mask(out, LENGTHS).pow(2).sum().backward()
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    ref_out, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=x.size(1))
    ref_out.pow(2).sum().backward()
    grad = encoder.layers[1][1].weight_hh_l0.grad
    torch.testing.assert_close(grad, ref.weight_hh_l1_reverse.grad, atol=1e-5, rtol=1e-4)


def test_full_length_batches_take_one_fused_call_per_direction() -> None:
    encoder = RecurrentEncoder(EncoderConfig("lstm", 3, 4, bidirectional=True))
    calls = []
    for module in encoder.layers[0]:
        module.register_forward_hook(lambda *args: calls.append(1))
    encoder(torch.randn(2, 6, 3), torch.tensor([6, 6]))
    assert len(calls) == 2
    calls.clear()
    # Outputs only: no ragged-tail steps even with ragged lengths.
    encoder(torch.randn(2, 6, 3), torch.tensor([6, 2]), return_state=False)
    assert len(calls) == 2


def test_reverse_within_length_keeps_padding_in_place() -> None:
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]).unsqueeze(-1)
    got = reverse_within_length(x, torch.tensor([3, 5])).squeeze(-1)
    assert got.tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4]]


def test_unknown_cell_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown cell 'lstn'; choose one of: rnn, lstm, gru"):
        EncoderConfig(cell="lstn")


def test_lstm_forget_gate_bias_starts_at_one() -> None:
    encoder = RecurrentEncoder(EncoderConfig("lstm", 3, 4))
    module = encoder.layers[0][0]
    assert torch.all(module.bias_ih_l0[4:8] + module.bias_hh_l0[4:8] == 1.0)


def test_bad_state_shape_names_the_expected_one() -> None:
    encoder = RecurrentEncoder(EncoderConfig("gru", 3, 4, num_layers=2))
    with pytest.raises(ValueError, match=r"state h must have shape \(2, B, 4\), got \(1, 2, 4\)"):
        encoder(torch.randn(2, 3, 3), state=torch.zeros(1, 2, 4))


def test_locked_dropout_between_layers_keeps_one_mask_per_sequence() -> None:
    # Each of layer 2's input features is dropped at every step of a sequence or at none.
    torch.manual_seed(0)
    enc = RecurrentEncoder(
        EncoderConfig(input_size=4, hidden_size=8, num_layers=2, dropout=0.5, locked_dropout=True)
    ).train()
    assert isinstance(enc.dropout, LockedDropout)
    x = torch.randn(3, 6, 4)
    first = enc.layers[0][0](x)[0]  # (B, T, H) layer 1's outputs
    torch.manual_seed(1)
    dropped = enc.dropout(first)
    kept = dropped != 0
    assert torch.equal(kept, kept[:, :1].expand_as(kept))
    assert 0 < kept.float().mean() < 1
    plain = RecurrentEncoder(EncoderConfig(input_size=4, hidden_size=8, num_layers=2, dropout=0.5))
    assert isinstance(plain.dropout, nn.Dropout)  # the default stays nn.LSTM's element-wise one


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_detached_state_carries_no_graph(cell: str) -> None:
    encoder = RecurrentEncoder(EncoderConfig(cell=cell, input_size=3, hidden_size=4))
    _, state = encoder(torch.randn(2, 5, 3))
    pieces = state if isinstance(state, tuple) else (state,)
    assert all(t.requires_grad for t in pieces)
    detached = detach_state(state)
    assert type(detached) is type(state)
    got = detached if isinstance(detached, tuple) else (detached,)
    assert all(not t.requires_grad and torch.equal(t, s) for t, s in zip(got, pieces, strict=True))
    assert detach_state(None) is None
