import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vidstudy.errors import ParameterError
from vidstudy.losses import FocalLoss
from vidstudy.models import MeanPoolClassifier, TemporalClassifier, bidirectional_lstm, count_parameters


def small_model(masked=True):
    torch.manual_seed(0)
    return TemporalClassifier(12, hidden_dim=8, num_lstm_layers=2, num_heads=2, dropout=0.4, head_dims=(8, 6),
                              masked=masked).eval()


def test_padding_does_not_change_a_prediction():
    torch.manual_seed(1)
    short, long = torch.rand(5, 12), torch.rand(20, 12)
    batch = torch.zeros(2, 20, 12)
    batch[0, :5], batch[1] = short, long
    lengths = torch.tensor([5, 20])
    model = small_model()
    with torch.no_grad():
        alone = model(short[None], torch.tensor([5]))
        padded = model(batch, lengths)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
    # the original's unmasked attention and pooling do let padding in
    unmasked = small_model(masked=False)
    with torch.no_grad():
        diff = (unmasked(short[None], torch.tensor([5]))[0] - unmasked(batch, lengths)[0]).abs().max()
    assert diff > 1e-4


@pytest.mark.parametrize("layers", [1, 3])
def test_the_cpu_bilstm_is_the_packed_bilstm_in_outputs_and_gradients(layers):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=layers, batch_first=True, bidirectional=True).eval()
    lengths = torch.tensor([9, 1, 4, 9, 6])
    x = torch.randn(5, 9, 6) * (torch.arange(9)[None, :, None] < lengths[:, None, None])

    def packed(x):
        out = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0]
        return pad_packed_sequence(out, batch_first=True, total_length=9)[0]

    results = []
    for run in (packed, lambda x: bidirectional_lstm(lstm, x, lengths)):
        lstm.zero_grad()
        inputs = x.clone().requires_grad_()
        out = run(inputs)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out, inputs.grad, *(p.grad for p in lstm.parameters())])
    for got, expected in zip(results[1], results[0]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (results[1][0][1, 1:] == 0).all()  # the padded steps are zero, as unpacking gives


def test_the_cpu_bilstm_drops_out_between_layers_only_in_training():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=2, dropout=0.5, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(4, 7, 6), torch.tensor([7, 3, 7, 5])
    outs = [bidirectional_lstm(lstm, x, lengths) for _ in range(2)]
    assert not torch.equal(*outs)
    lstm.eval()
    assert torch.equal(bidirectional_lstm(lstm, x, lengths), bidirectional_lstm(lstm, x, lengths))


def test_paper_model_has_65_3_million_parameters():
    n = count_parameters(TemporalClassifier(1280))
    assert abs(n - 65.3e6) / 65.3e6 < 0.01


def test_xavier_init_and_output_shape():
    model = TemporalClassifier(64, hidden_dim=32, num_lstm_layers=1, num_heads=2, dropout=0.4, head_dims=(48, 24))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) >= 5 and all(torch.all(m.bias == 0) for m in linears)
    for m in linears:  # Xavier-uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), so std a / sqrt(3)
        fan_out, fan_in = m.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= bound + 1e-6
        if m.weight.numel() >= 500:
            assert float(m.weight.detach().std()) == pytest.approx(bound / 3**0.5, rel=0.15), m
    model = small_model()
    assert model(torch.rand(3, 7, 12), torch.tensor([7, 3, 1])).shape == (3, 4)


def test_mean_pool_baseline_ignores_padding_and_order():
    torch.manual_seed(0)
    model = MeanPoolClassifier(6, hidden_dim=5).eval()
    x = torch.rand(1, 4, 6)
    padded = torch.cat([x, torch.rand(1, 3, 6)], 1)
    with torch.no_grad():
        a = model(x, torch.tensor([4]))
        b = model(padded, torch.tensor([4]))
        c = model(x.flip(1), torch.tensor([4]))
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)


LOGITS = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.5, 1.5, -1.0, 0.0]])
TARGETS = torch.tensor([0, 3])


def test_focal_loss_reduces_to_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(16, 4), torch.randint(0, 4, (16,))
    loss = FocalLoss(None, gamma=0.0, smoothing=0.0)(logits, targets)
    assert torch.allclose(loss, F.cross_entropy(logits, targets), atol=1e-6)


@pytest.mark.parametrize("alpha,gamma,smoothing,expected", [
    (None, 2.0, 0.1, 0.7782793524811389),
    ([2.0, 1.0, 1.0, 0.5], 2.0, 0.1, 0.444502411449254),
    (None, 1.0, 0.0, 0.922194016941049),
])
def test_focal_loss_known_values(alpha, gamma, smoothing, expected):
    loss = FocalLoss(None if alpha is None else torch.tensor(alpha), gamma=gamma, smoothing=smoothing)(LOGITS, TARGETS)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_focal_loss_parameters():
    with pytest.raises(ParameterError, match="gamma >= 0"):
        FocalLoss(gamma=-1)
