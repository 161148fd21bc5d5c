# One image for web, workers and the DICOM SCP; the command decides the role (see docker-compose.yml).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LIGHTBOX_DATA=/data
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml ./
RUN python - <<'PY' > /tmp/req.txt
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"]))
PY
RUN pip install --no-cache-dir -r /tmp/req.txt
COPY frontend/package.json frontend/package-lock.json frontend/
RUN cd frontend && npm ci --no-audit --no-fund
COPY . .
RUN cd frontend && npm run build
EXPOSE 8000 11112
CMD ["python", "-m", "uvicorn", "lightbox.asgi:application", "--app-dir", "backend", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools"]
