"""The formulas of DESIGN §1 on hand-made parameters."""

import pytest
import torch

from jointnet_cli.joint import weights as jw


def stacks_from(thetas):
    """thetas[i][l] = list of floats for θ_i^l  →  (n, P_l) per layer."""
    n, L = len(thetas), len(thetas[0])
    return [torch.tensor([thetas[i][l] for i in range(n)], dtype=torch.float64) for l in range(L)]


# three networks, three layers; network 2 differs from 0 and 1 in layer 2 only
THETAS = [
    [[0.0, 0.0], [1.0], [0.0, 0.0, 0.0]],
    [[0.0, 1.0], [1.0], [0.0, 0.0, 1.0]],
    [[0.0, 0.0], [3.0], [4.0, 0.0, 0.0]],
]


def test_layer_and_window_distances_match_the_definition():
    d2 = jw.layer_sq_distances(stacks_from(THETAS))
    assert d2.shape == (3, 3, 3)
    assert d2[0, 0, 1] == 1 and d2[1, 0, 2] == 4 and d2[2, 0, 2] == 16 and d2[2, 1, 2] == 17
    assert torch.equal(d2, d2.transpose(1, 2)) and (d2.diagonal(dim1=1, dim2=2) == 0).all()
    dw = jw.window_sq_distances(d2)            # window w = layers w, w+1
    assert dw.shape == (2, 3, 3)
    assert dw[0, 0, 2] == 0 + 4 and dw[1, 0, 2] == 4 + 16 and dw[1, 1, 2] == 4 + 17


def test_every_layout_of_the_parameters_gives_the_same_distances_bit_for_bit():
    """A layer as one (n, P) matrix, as (n, …) stacks of its tensors, or as lists of each network's own
    tensors (what training passes: nothing stacked) gives the same distances; a network that differs
    from network 0 in the last float32 digits keeps them (the subtraction from row 0 is exact)."""
    g = torch.Generator().manual_seed(0)
    weight = [torch.randn(5, 3, generator=g) for _ in range(4)]              # layer 0: a weight and a bias
    bias = [torch.randn(5, generator=g) for _ in range(4)]
    weight[1] = weight[0] + 1e-6 * torch.randn(5, 3, generator=g)            # networks 0 and 1 nearly equal
    bias[1] = bias[0].clone()
    matrix = torch.stack([torch.cat([w.reshape(-1), b]) for w, b in zip(weight, bias)])
    as_rows = jw.layer_sq_distances([[weight, bias]])
    as_stacks = jw.layer_sq_distances([[torch.stack(weight), torch.stack(bias)]])
    assert torch.equal(as_rows, as_stacks)
    assert torch.allclose(jw.layer_sq_distances([matrix]), as_rows, rtol=1e-12, atol=0)
    exact = ((matrix.double()[:, None] - matrix.double()[None]) ** 2).sum(-1)
    assert torch.allclose(as_rows[0], exact, rtol=1e-6, atol=0)                # float32's rounding of θ_i − θ_0
    assert as_rows[0, 0, 1].item() == pytest.approx(exact[0, 1].item(), rel=1e-12)   # exact: 8.4e-12


def direct_sq_distances(layers: list, nets: int) -> torch.Tensor:
    """‖θ_i^l − θ_j^l‖² by definition, in float64: (L, nets, nets)."""
    out = []
    for layer in layers:
        parts = [layer] if isinstance(layer, torch.Tensor) else layer
        flat = torch.stack([torch.cat([part[i].reshape(-1) for part in parts]) for i in range(nets)]).double()
        out.append(((flat[:, None] - flat[None]) ** 2).sum(-1))
    return torch.stack(out)


def test_a_sessions_distances_keep_their_scratch_and_read_the_parameters_afresh_on_every_call():
    """`LayerDistances` takes every layer's small tensors from one merged matrix (a layer with none between
    them; a layer given as one matrix) and a tensor of more than `GRAM_BLOCK` coordinates a block of columns
    at a time; it keeps its scratch matrices from one call to the next, and each call reads the tensors as
    they are then: after an in-place change the distances are the direct float64 ones again, from the same
    scratch; fewer networks get scratch of their own shape, and one network has no distances."""
    g = torch.Generator().manual_seed(7)
    n = 4
    weight = [torch.randn(3, 5, generator=g) for _ in range(n)]                    # layer 0: small tensors
    bias = [torch.randn(3, generator=g) for _ in range(n)]
    big = [torch.randn(jw.GRAM_BLOCK + 37, generator=g) for _ in range(n)]         # layer 1: two blocks and
    big_bias = [torch.randn(2, generator=g) for _ in range(n)]                     # a small tensor
    only_big = [torch.randn(jw.GRAM_BLOCK + 1, generator=g) for _ in range(n)]     # layer 2: no small tensor
    matrix = torch.randn(n, 6, generator=g)                                        # layer 3: one (n, P) matrix
    layers = [[weight, bias], [big, big_bias], [only_big], matrix]

    distances = jw.LayerDistances()
    d2 = distances(layers)
    assert torch.allclose(d2, direct_sq_distances(layers, n), rtol=1e-6, atol=0)   # float32's rounding of θ_i − θ_1
    assert torch.equal(d2, d2.transpose(1, 2)) and (d2.diagonal(dim1=1, dim2=2) == 0).all()
    where = {name: m.data_ptr() for name, m in distances.kept.items()}
    with torch.no_grad():
        big[2].add_(0.5)                                                            # in place, as an optimizer
        bias[1].mul_(-1.0)
        matrix[3].add_(1.0)
    again = distances(layers)
    assert torch.allclose(again, direct_sq_distances(layers, n), rtol=1e-6, atol=0)
    assert not torch.allclose(again[:2], d2[:2]) and not torch.allclose(again[3], d2[3])
    assert torch.equal(again[2], d2[2])                                             # untouched: the same bits
    assert {name: m.data_ptr() for name, m in distances.kept.items()} == where
    assert torch.equal(again, jw.layer_sq_distances(layers))                        # fresh scratch: the same numbers
    three = distances([[part[:3] for part in layer] if isinstance(layer, list) else layer[:3] for layer in layers])
    assert torch.allclose(three, direct_sq_distances(layers, 3), rtol=1e-6, atol=0)
    assert torch.equal(distances([[part[:1] for part in layers[0]], [only_big[:1]]]), torch.zeros(2, 1, 1,
                                                                                                   dtype=torch.float64))


def test_float64_parameters_keep_float64_distances():
    """Parameters held in float64 are merged in float64: a difference at 1e-12 of a coordinate, which float32
    could not hold, keeps its digits."""
    base = torch.linspace(0.5, 1.5, 40, dtype=torch.float64)
    nets = [base, base + 1e-12, base + 2e-12]
    d2 = jw.LayerDistances()([[nets]])
    expected = direct_sq_distances([[nets]], 3)
    assert torch.allclose(d2, expected, rtol=1e-3, atol=0) and d2[0, 0, 2] > 0


@pytest.mark.gpu
def test_the_distances_on_a_gpu_are_the_cpus():
    """On a GPU every tensor is one product (no blocks) and the small ones are merged as on the CPU: the
    same distances up to the order of float64 additions, exactly symmetric."""
    g = torch.Generator().manual_seed(8)
    layers = [[[torch.randn(3, 5, generator=g) for _ in range(5)], [torch.randn(3, generator=g) for _ in range(5)]],
              [[torch.randn(jw.GRAM_BLOCK + 37, generator=g) for _ in range(5)]]]
    on_gpu = [[[x.cuda() for x in part] for part in layer] for layer in layers]
    cpu, gpu = jw.LayerDistances()(layers), jw.LayerDistances()(on_gpu)
    assert gpu.device.type == "cpu" and torch.equal(gpu, gpu.transpose(1, 2))
    assert torch.allclose(gpu, cpu, rtol=1e-10, atol=0)


def test_a_pair_close_to_each_other_but_far_from_the_first_network_keeps_float32s_rounding_only():
    """θ_2 and θ_3 are 1/300 of their distance to θ_1 apart (a group that is not network 1's): each
    θ_i − θ_1 is rounded to float32 (2^-24 of a coordinate), so their squared distance is off by at most
    2 · 2^-24 · ‖θ_2 − θ_1‖ / ‖θ_2 − θ_3‖ relative, in one block of columns or in two; not more."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(300, generator=g)
    far = base + 3.0 + torch.rand(300, generator=g)               # not within a factor 2 of θ_1's coordinates
    near = far + 1e-2 * torch.randn(300, generator=g)
    flat = torch.stack([base, far, near]).double()
    direct = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    bound = 2 * 2.0 ** -24 * (direct[0, 1] / direct[1, 2]).sqrt().item()
    for block in (1000, 150):
        gram = jw.relative_gram([base, far, near], block=block)
        sq = gram.diagonal()
        d2 = sq[:, None] + sq[None, :] - 2 * gram
        assert abs(d2[1, 2].item() / direct[1, 2].item() - 1) <= bound


def test_the_gram_product_taken_a_block_of_columns_at_a_time_is_the_same_product():
    """On the CPU a large tensor's Gram product is summed over blocks of columns (kept in cache): the
    same float64 numbers up to the order of additions, for a stack or a list, whatever the last block's size,
    and the pairwise distances from it are the direct ones."""
    g = torch.Generator().manual_seed(1)
    nets = [torch.randn(7, 11, generator=g) for _ in range(5)]            # 77 coordinates
    nets[3] = nets[2] + 1e-5 * torch.randn(7, 11, generator=g)
    whole = jw.relative_gram(nets, block=1000)                            # one product
    a = jw.relative_rows(nets)
    assert torch.equal(whole, a @ a.T)
    for block in (1, 10, 76):                                             # 77, 8 and 2 blocks, the last short
        assert torch.allclose(jw.relative_gram(nets, block=block), whole, rtol=1e-13, atol=1e-13)
        assert torch.allclose(jw.relative_gram(torch.stack(nets), block=block), whole, rtol=1e-13, atol=1e-13)
    transposed = [x.T for x in nets]                                      # non-contiguous: the same coordinates
    t = jw.relative_rows([x.T.contiguous() for x in nets])
    assert torch.allclose(jw.relative_gram(transposed, block=10), t @ t.T, rtol=1e-13, atol=1e-13)
    assert torch.equal(jw.relative_gram(nets[:1], block=10), torch.zeros(1, 1, dtype=torch.float64))  # one network
    flat = torch.stack([x.reshape(-1) for x in nets]).double()
    direct = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    sq = jw.relative_gram(nets, block=10).diagonal()
    from_blocks = sq[:, None] + sq[None, :] - 2 * jw.relative_gram(nets, block=10)
    assert torch.allclose(from_blocks.fill_diagonal_(0), direct, rtol=1e-6, atol=1e-9)


def test_a_blocks_product_split_into_batched_column_slices_is_the_same_product():
    """`block_gram` sums the Gram products of equal column slices taken in one batched call: a a^T up
    to the order of float64 additions; a width the split does not divide is one product, bit for bit."""
    g = torch.Generator().manual_seed(2)
    a = torch.randn(6, 40, generator=g, dtype=torch.float64)
    by_columns = sum(a[:, k:k + 10] @ a[:, k:k + 10].T for k in range(0, 40, 10))   # 4 slices of 10, by hand
    for split in (2, 4):
        assert torch.allclose(jw.block_gram(a, split), a @ a.T, rtol=1e-13, atol=1e-13)
    assert torch.allclose(jw.block_gram(a, 4), by_columns, rtol=1e-14, atol=1e-14)
    assert torch.equal(jw.block_gram(a[:, :39], 2), a[:, :39] @ a[:, :39].T)         # 39 columns: one product
    assert torch.equal(jw.block_gram(a, 1), a @ a.T)
    nets = [torch.randn(9, 16, generator=g) for _ in range(4)]                       # 144 coordinates
    for block in (48, 50):                                # 3 full blocks; or 2 and a short even one of 44
        two, one = (jw.relative_gram(nets, block=block, split=split) for split in (2, 1))
        assert torch.allclose(two, one, rtol=1e-13, atol=1e-13)


def test_the_upper_bands_cover_each_upper_entry_once_and_give_the_same_symmetric_gram():
    """The Gram product of a large tensor is taken as bands of rows against the rows from the band's first
    on (row 0, a_1 = 0, in none): every entry on or above the diagonal of rows 1..n−1 is in exactly one
    band; the mirrored result is exactly symmetric and equals one product up to the order of additions,
    whatever the band's height."""
    for n in (1, 2, 5, 16):
        for band in (1, 2, 3, 16):
            covered = torch.zeros(n, n, dtype=torch.int64)
            for lo, hi in jw.upper_bands(n, band):
                assert hi - lo <= band
                covered[lo:hi, lo:] += 1
            assert torch.equal(covered.triu(), torch.ones(n, n, dtype=torch.int64).triu().index_fill(0, torch.tensor([0]), 0))
    g = torch.Generator().manual_seed(3)
    nets = [torch.randn(10, 12, generator=g) for _ in range(7)]            # 120 coordinates
    a = jw.relative_rows(nets)
    for band in (1, 2, 3, 4, 7):
        got = jw.relative_gram(nets, block=50, band=band)                  # 3 blocks, the last short
        assert torch.equal(got, got.T)
        assert torch.allclose(got, a @ a.T, rtol=1e-13, atol=1e-13)
    lent = torch.full((7, 64), float("nan"), dtype=torch.float64)          # a lent block matrix, wider than a block
    assert torch.equal(jw.relative_gram(nets, block=50, buf=lent), jw.relative_gram(nets, block=50))
    m = torch.tensor([[1.0, 2.0], [-5.0, 3.0]])                            # the lower triangle is ignored
    assert torch.equal(jw.mirrored_upper(m), torch.tensor([[1.0, 2.0], [2.0, 3.0]]))


def test_sigma_is_mean_over_i_of_nearest_neighbour_distance():
    dw = jw.window_sq_distances(jw.layer_sq_distances(stacks_from(THETAS)))
    sigma = jw.sigma_from(dw)
    d = dw.sqrt()
    expected = [sum(min(d[w, i, j] for j in range(3) if j != i) for i in range(3)) / 3 for w in range(2)]
    assert sigma.tolist() == pytest.approx([float(e) for e in expected])
    # window 0: nearest neighbours at 1, 1, 2 → mean 4/3
    assert sigma[0].item() == pytest.approx(4 / 3)


def test_irls_weights_delta_and_coupling_follow_the_formulas():
    dw = jw.window_sq_distances(jw.layer_sq_distances(stacks_from(THETAS)))
    sigma = jw.sigma_from(dw)
    w = jw.irls_weights(dw, sigma)
    for k in range(2):
        for i in range(3):
            for j in range(3):
                want = 1.0 if i == j else sigma[k] ** 2 / (sigma[k] ** 2 + dw[k, i, j])
                assert w[k, i, j].item() == pytest.approx(float(want))
    ones = torch.ones_like(w)
    assert jw.delta(w, ones) == pytest.approx(max(1 - w[k, i, j].item() for k in range(2) for i in range(3) for j in range(3) if i < j))
    lam = 10.0
    c = jw.coupling(w, lam, num_layers=3)
    assert c.shape == (3, 3, 3)
    # layer 0 is only in window 0, layer 1 in windows 0 and 1, layer 2 only in window 1
    assert c[0, 0, 1].item() == pytest.approx(lam * w[0, 0, 1].item())
    assert c[1, 0, 1].item() == pytest.approx(lam * (w[0, 0, 1] + w[1, 0, 1]).item())
    assert c[2, 1, 2].item() == pytest.approx(lam * w[1, 1, 2].item())
    assert torch.equal(c, c.transpose(1, 2)) and (c.diagonal(dim1=1, dim2=2) == 0).all()


def test_single_layer_network_has_one_window_holding_that_layer():
    stacks = [torch.tensor([[0.0], [3.0]], dtype=torch.float64)]
    dw = jw.window_sq_distances(jw.layer_sq_distances(stacks))
    assert dw.shape == (1, 2, 2) and dw[0, 0, 1] == 9
    c = jw.coupling(torch.ones(1, 2, 2, dtype=torch.float64), 10.0, num_layers=1)
    assert c[0, 0, 1] == 10.0 and c[0, 0, 0] == 0


def test_identical_networks_and_single_network_do_not_divide_by_zero():
    same = [torch.ones(4, 5, dtype=torch.float64)]
    dw = jw.window_sq_distances(jw.layer_sq_distances(same))
    sigma = jw.sigma_from(dw)
    assert sigma.tolist() == [0.0]
    w = jw.irls_weights(dw, sigma)
    assert torch.isfinite(w).all() and (w == 1).all()
    one = [torch.ones(1, 5, dtype=torch.float64)] * 2
    dw1 = jw.window_sq_distances(jw.layer_sq_distances(one))
    assert jw.sigma_from(dw1).tolist() == [0.0]
    assert jw.delta(jw.irls_weights(dw1, jw.sigma_from(dw1)), torch.ones(1, 1, 1)) == 0.0


def test_geman_mcclure_limits():
    sigma = torch.tensor(2.0, dtype=torch.float64)
    x = torch.tensor([0.0, 1e-4, 1e4], dtype=torch.float64)
    rho = jw.geman_mcclure(x, sigma)
    assert rho[0] == 0
    assert rho[1].item() == pytest.approx(1e-8, rel=1e-6)      # ≈ x² near 0
    assert rho[2].item() == pytest.approx(4.0, rel=1e-6)       # → σ² far away


def test_robust_and_weighted_consistency_sum_over_pairs_once():
    d2 = jw.layer_sq_distances(stacks_from(THETAS))
    dw = jw.window_sq_distances(d2)
    sigma = jw.sigma_from(dw)
    lam = 2.0
    robust = jw.robust_consistency(dw, sigma, lam)
    by_hand = lam * sum(
        sigma[w] ** 2 * dw[w, i, j] / (sigma[w] ** 2 + dw[w, i, j]) for w in range(2) for i in range(3) for j in range(i + 1, 3)
    )
    assert robust == pytest.approx(float(by_hand))
    # with the IRLS weights of these same parameters, the weighted term equals the robust one (ρ = w·d²)
    c = jw.coupling(jw.irls_weights(dw, sigma), lam, 3)
    assert jw.weighted_consistency(d2, c) == pytest.approx(robust)


def test_coupling_gradient_is_two_sum_c_times_difference():
    torch.manual_seed(0)
    n, shapes = 4, [(3, 2), (5,), (2, 2)]
    thetas = [[torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes] for _ in range(n)]
    c = jw.coupling(_sym(torch.rand(2, n, n, dtype=torch.float64)), 10.0, 3)
    # Σ_{i<j} Σ_l c_ijl ‖θ_i^l − θ_j^l‖², built with autograd
    total = sum(c[l, i, j] * (thetas[i][l] - thetas[j][l]).pow(2).sum()
                for l in range(3) for i in range(n) for j in range(i + 1, n))
    total.backward()
    for i in range(n):
        for l in range(3):
            analytic = 2 * sum(c[l, i, j] * (thetas[i][l] - thetas[j][l]) for j in range(n) if j != i)
            assert torch.allclose(thetas[i][l].grad, analytic.detach())
            # the anchor form of eq. 9: 2 C_il (θ_i^l − m_il)
            strengths, mix = jw.anchor_weights(c)
            m = sum(mix[l, i, j] * thetas[j][l].detach() for j in range(n))
            assert torch.allclose(2 * strengths[l, i] * (thetas[i][l].detach() - m), analytic.detach())


def _sym(t):
    t = t.triu(1)
    return t + t.transpose(1, 2)
