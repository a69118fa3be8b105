"""The playground: optimizers racing on a landscape, live in the browser, computed by descend.

``descend playground`` serves the page (:func:`~descend.playground.server.serve`); its
JSON API is :mod:`descend.playground.api` (FastAPI). The landscapes
(:mod:`~descend.playground.landscape`, formulas by :mod:`~descend.playground.formula`)
and races (:mod:`~descend.playground.race`: each racer one ``descend.minimize`` run)
need only torch, so a script can use them without the extra ``descend[playground]``.
"""
