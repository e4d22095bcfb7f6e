"""A synthetic two-level scan shared by the image tests (generated once per session, about 60k voxels)."""
import pytest

from vertebrafe.image import phantom


@pytest.fixture(scope="session")
def pair():
    """L1-L2 at vBMD 55 and 100 mg/cm^3, 1 mm voxels, noise 15 HU, blur 0.5 mm; reference segment at 4 mm."""
    return phantom("L1-L2", bmd={"L1": 55.0, "L2": 100.0}, spacing=1.0, element_size=4.0, margin=4.0)
