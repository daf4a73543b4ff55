"""Print a notebook's text outputs and dump its images to /tmp (for reviewing executed notebooks)."""
import base64
import json
import sys

nb = json.load(open(sys.argv[1]))
tag = sys.argv[2] if len(sys.argv) > 2 else "nb"
for i, c in enumerate(nb["cells"]):
    if c["cell_type"] != "code":
        continue
    for o in c.get("outputs", []):
        if o["output_type"] == "stream":
            print(i, "STREAM", "".join(o["text"])[:1500])
        elif o["output_type"] in ("display_data", "execute_result"):
            d = o["data"]
            if "text/markdown" in d:
                print(i, "MD", "".join(d["text/markdown"])[:3000])
            if "image/png" in d:
                path = f"/tmp/{tag}_{i}.png"
                open(path, "wb").write(base64.b64decode(d["image/png"]))
                print(i, "PNG", path, len(d["image/png"]))
        elif o["output_type"] == "error":
            print(i, "ERROR", o["ename"], o["evalue"])
