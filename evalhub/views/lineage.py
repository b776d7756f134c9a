"""Manager pages of where adapters come from and how they leave: a dataset's lineage (runs,
studies, preference sets and the runs they trained) and a run's adapter as a zip."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from evalhub.reports.adapter_export import AdapterExportError, adapter_zip, zip_name
from evalhub.roles import manager_required
from evalhub.selectors.lineage_graph import dataset_lineage
from trainer.models import Dataset, FineTuneRun


@manager_required
def dataset_lineage_view(request: HttpRequest, name: str) -> HttpResponse:
    dataset = get_object_or_404(Dataset, name=name)
    tree = dataset_lineage(dataset=dataset)
    return render(request, "evalhub/dataset_lineage.html", {"dataset": dataset, "tree": tree})


@manager_required
def run_adapter_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The adapter files and the model card as a zip; 404 while the run has no adapter."""
    run = get_object_or_404(FineTuneRun.objects.select_related("base_model", "dataset"), pk=pk)
    try:
        content = adapter_zip(run=run)
    except AdapterExportError as exc:
        raise Http404(str(exc)) from exc
    return zip_response(content, zip_name(run))


def zip_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
