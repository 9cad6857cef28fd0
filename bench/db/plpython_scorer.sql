-- bench/db/plpython_scorer.sql: the PL/Python + PyTorch scorer `make bench` measures clad
-- against: what a user would assemble today.  Each session builds one
-- torch_scorer.Scorer (bench/db/torch_scorer.py: the same safetensors file loaded into
-- torchvision's resnet18, clad's ODIN score and calibration) and keeps it in GD.
--
-- Settings the functions read once per session (bench/db/run.sh sets them with
-- ALTER DATABASE): bench.torch_dir (where torch_scorer.py is) and bench.torch_model
-- (the model file).  `threads` sets torch's and OpenBLAS's threads (default 1).

-- The session's Scorer, built on first use (import torch, read the file, build the net).
CREATE FUNCTION torch_scorer_get(threads int) RETURNS void LANGUAGE plpython3u AS $$
if 'clad_torch' not in GD:
    import sys
    r = plpy.execute("SELECT current_setting('bench.torch_dir') AS d, current_setting('bench.torch_model') AS m")[0]
    if r['d'] not in sys.path:
        sys.path.insert(0, r['d'])
    import torch_scorer
    GD['clad_torch'] = torch_scorer.Scorer(r['m'], threads)
GD['clad_torch'].set_threads(threads)
$$;

-- The calibrated anomaly score of one image (clad_score's twin).
CREATE FUNCTION torch_score(img bytea, threads int DEFAULT 1) RETURNS real
LANGUAGE plpython3u STRICT AS $$
s = GD.get('clad_torch')
if s is None:
    plpy.execute("SELECT torch_scorer_get(%d)" % threads)
    s = GD['clad_torch']
s.set_threads(threads)
return s.score_one(img)[1]
$$;

-- The ODIN confidence of one image (clad_confidence's twin).
CREATE FUNCTION torch_confidence(img bytea, threads int DEFAULT 1) RETURNS real
LANGUAGE plpython3u STRICT AS $$
s = GD.get('clad_torch')
if s is None:
    plpy.execute("SELECT torch_scorer_get(%d)" % threads)
    s = GD['clad_torch']
s.set_threads(threads)
return s.score_one(img)[0]
$$;

-- Scores of an array of images, 64 per network pass (clad_score(model, bytea[])'s twin);
-- NULL elements give NULL elements.
CREATE FUNCTION torch_score_batch(imgs bytea[], threads int DEFAULT 1) RETURNS real[]
LANGUAGE plpython3u STRICT AS $$
s = GD.get('clad_torch')
if s is None:
    plpy.execute("SELECT torch_scorer_get(%d)" % threads)
    s = GD['clad_torch']
s.set_threads(threads)
return s.score_batch(imgs, 64)
$$;

-- What runs: torch version, threads, OpenBLAS kernels, the environment's settings.
CREATE FUNCTION torch_describe(threads int DEFAULT 1) RETURNS text
LANGUAGE plpython3u AS $$
plpy.execute("SELECT torch_scorer_get(%d)" % threads)
return GD['clad_torch'].describe()
$$;
