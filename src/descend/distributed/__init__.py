"""Beyond one process: torch.distributed process groups, sharded data and all-reduced objectives.

* :mod:`~descend.distributed.data_parallel`: ``fit(..., distributed=True)``'s share of
  each batch per rank, its loss weight and the values all ranks agree on;
* :mod:`~descend.distributed.sharded_dropout`: every rank's dropout mask is its rows of
  the one-process mask;
* :mod:`~descend.distributed.stream_shards`: a streamed file shared out among the ranks
  by pieces, each read by one rank per epoch;
* :mod:`~descend.distributed.agreed_callbacks`: a callback's stop request stops all ranks;
* :mod:`~descend.distributed.objective`: full-batch objectives summed over ranks inside
  autograd (second-order methods on sharded data);
* :mod:`~descend.distributed.launch`: a function run on the ranks of torch's elastic
  launcher (``descend fit --nproc`` and the rerun of its records).
"""

from descend.distributed.data_parallel import DataParallel
from descend.distributed.sharded_dropout import RowSlice, sharded_dropout

__all__ = ["DataParallel", "RowSlice", "sharded_dropout"]
