from edge_sdk.device_info import describe_device, parse_throttled


def test_parse_throttled_flags():
    assert parse_throttled("throttled=0x0") == {"raw": "0x0", "flags": []}
    parsed = parse_throttled("throttled=0x50005")
    assert "under-voltage detected" in parsed["flags"] and "under-voltage has occurred" in parsed["flags"]
    assert "currently throttled" in parsed["flags"]


def test_describe_device_has_the_basics():
    device = describe_device()
    for key in ("architecture", "cpu", "cores", "os", "python", "packages"):
        assert device[key]
