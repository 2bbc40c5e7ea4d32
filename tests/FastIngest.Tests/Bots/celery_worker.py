"""A stock Celery 5 app with the task a team runs behind a receiver that queues Meta's webhook bodies:
handle_whatsapp_event(payload). The task prints one JSON line ({"id": self.request.id, "payload": payload}) to the
real stdout so the test can check what ran. The broker URL comes from FASTINGEST_TEST_BROKER (redis:// or amqp://).
Run with Debian's /usr/bin/python3 (python3-celery): python3 -m celery -A celery_worker worker --pool=solo."""
import json
import os
import sys

from celery import Celery

app = Celery("fastingest_test", broker=os.environ["FASTINGEST_TEST_BROKER"])
app.conf.update(task_acks_late=False, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(bind=True, name="tasks.handle_whatsapp_event")
def handle_whatsapp_event(self, payload):
    sys.__stdout__.write(json.dumps({"id": self.request.id, "payload": payload}) + "\n")
    sys.__stdout__.flush()
