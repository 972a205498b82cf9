import nbformat
import pytest

from labsupport.errors import LabError
from labsupport.lessons.workshop import strip_solutions, student_version

CELL = '''def write_batch(df, batch_id):
    rows = df.count()
    ### BEGIN SOLUTION
    sink.write(df)
    metrics.after_write(rows)
    ### END SOLUTION
    return rows
'''


def test_solution_block_becomes_prompt_at_its_indentation():
    out = strip_solutions(CELL)
    assert "sink.write" not in out and "metrics.after_write" not in out
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("exercise: fill in this part")\n    return rows' in out
    compile(out, "cell", "exec")  # still valid Python


def test_unbalanced_markers_are_an_error():
    with pytest.raises(LabError, match="unbalanced"):
        strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_student_notebook_drops_solution_cells_and_outputs():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL),
                nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]}),
                nbformat.v4.new_markdown_cell("### BEGIN SOLUTION is mentioned in prose")]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hi")]
    st = student_version(nb)
    assert len(st.cells) == 2 and st.cells[0].outputs == []
    assert "NotImplementedError" in st.cells[0].source
    assert st.cells[1].cell_type == "markdown"
