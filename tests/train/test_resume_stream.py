"""Kill-and-resume of a run streamed from a Parquet file with buffer shuffling."""

from resume_helpers import parquet, sigkill_then_resume


def test_sigkill_mid_epoch_of_a_parquet_stream_then_resume_is_bit_identical(tmp_path):
    sigkill_then_resume(tmp_path, ["--stream", parquet(tmp_path)])
