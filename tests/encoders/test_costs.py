import pytest

from s2robot.encoders.costs import encoder_costs


# The paper's Table 10 (multiply-accumulates per image, parameters), within 2%.
@pytest.mark.parametrize(
    "name,scales,gmacs,params",
    [
        ("vit_b", [1], 17.5, 86e6),
        ("vit_l", [1], 61.6, 307e6),
        ("vit_b", [1, 2], 87.9, 86e6),
    ],
)
def test_matches_paper_table_10(name, scales, gmacs, params):
    c = encoder_costs(name, scales)
    assert c["gmacs"] == pytest.approx(gmacs, rel=0.02)
    assert c["params"] == pytest.approx(params, rel=0.02)


def test_scales_multiply_tiles():
    one = encoder_costs("vit_t", [1])["gmacs"]
    assert encoder_costs("vit_t", [1, 2, 3])["gmacs"] == pytest.approx(14 * one, rel=0.01)
